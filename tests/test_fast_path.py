"""The fast path: one-token s' targets, key/value-cached decoding, XLA decoder, bfloat16.

Each fast variant is checked against the slow reference it replaces (kept reachable only
through private switches), on random networks and inputs.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.policies import policy_saver
from tf_agents.trajectories import time_step as ts

from qtransformer.model import losses
from qtransformer.model.policy import QTransformerPolicy
from qtransformer.tools import benchmarks
from qtransformer.training.config import TrainConfig

BINS = 9


def tiny_config(loss="hl_gauss", **overrides):
    return TrainConfig(loss=loss).replace(
        embed_dim=16, num_layers=2, num_heads=2, action_bins=BINS, value_bins=11, head_rank=8,
        **overrides,
    )  # fmt: skip


def agent_and_batch(loss, dims, batch=32, seed=0, **overrides):
    # Keras draws unseeded initialisers' seeds from Python's `random`, which
    # tf.random.set_seed leaves alone: without this the net depended on the tests run before.
    tf.keras.utils.set_random_seed(seed)
    agent = benchmarks.make_agent(tiny_config(loss, **overrides), action_dims=dims)
    # Target net != online net, so a mix-up between the two would show.
    for v in agent.target_q_network.trainable_variables:
        v.assign(v + tf.random.normal(v.shape, stddev=0.05, seed=seed))
    return agent, benchmarks.synthetic_batch(batch, BINS, action_dims=dims, seed=seed + 1)


def test_first_logits_equal_position_zero_of_the_full_pass():
    agent, b = agent_and_batch("hl_gauss", 5)
    net = agent.q_network
    random_bins = tf.random.uniform([32, 5], 0, BINS, tf.int32, seed=1)
    full = net((b["observation"], random_bins))[0][:, 0]
    np.testing.assert_allclose(net.first_logits(b["observation"]), full, atol=1e-5)


@pytest.mark.parametrize("loss", ["hl_gauss", "c51", "mse"])
def test_one_token_targets_equal_padded_targets(loss):
    agent, b = agent_and_batch(loss, 4, mc_lower_bound=False)
    fast = agent.td_targets(b).numpy()
    fast_loss = agent.loss(b).loss.numpy()
    agent._pad_next_state = True
    padded = agent.td_targets(b).numpy()
    np.testing.assert_allclose(fast, padded, atol=1e-5)
    np.testing.assert_allclose(fast_loss, agent.loss(b).loss.numpy(), rtol=1e-5)
    # The last dimension bootstraps from s' (the part that changed): it must vary.
    assert np.std(fast[:, -1]) > 1e-4


def test_one_token_targets_under_xla_step():
    """The XLA-compiled loss (word ids, no strings) agrees with and without the padding."""
    agent, b = agent_and_batch("hl_gauss", 4, batch=16, use_xla=True)
    ids = {
        key: dict(b[key], instruction=agent.q_network.instruction_ids(b[key]["instruction"]))
        for key in ("observation", "next_observation")
    }
    experience = {**b, **ids}
    fast = tf.function(agent._loss_and_grads, jit_compile=True)(experience)[0].numpy()
    agent._pad_next_state = True
    padded = tf.function(agent._loss_and_grads, jit_compile=True)(experience)[0].numpy()
    np.testing.assert_allclose(fast, padded, rtol=1e-5)
    np.testing.assert_allclose(fast, agent.loss(b).loss.numpy(), rtol=1e-4)  # as without XLA


def uncached_bins(policy, obs):
    policy._use_cache = False
    try:
        return policy.greedy_bins(obs).numpy()
    finally:
        policy._use_cache = True


def variant(policy, jit_compile, matrix_kernels=True):
    """The same network behind another decoder: plain or XLA, matrix or einsum kernels."""
    out = QTransformerPolicy(
        policy.time_step_spec, policy.action_spec, policy._q_network, policy._tokenizer,
        policy._value_range, jit_compile=jit_compile,
    )  # fmt: skip
    out._matrix_kernels = matrix_kernels
    return out


@pytest.mark.parametrize(
    "loss,dims,seed", [("hl_gauss", 8, 0), ("hl_gauss", 3, 1), ("mse", 8, 2), ("bc", 5, 3)]
)
@pytest.mark.parametrize("batch", [1, 256])
def test_cached_decoding_gives_the_uncached_greedy_actions(loss, dims, seed, batch):
    agent, b = agent_and_batch(loss, dims, batch=batch, seed=seed)
    policy, obs = agent.policy, b["observation"]
    expected = uncached_bins(policy, obs)
    assert isinstance(policy._decode, tf.types.experimental.PolymorphicFunction)  # XLA default
    np.testing.assert_array_equal(policy.greedy_bins(obs).numpy(), expected)
    plain = variant(policy, jit_compile=False)
    np.testing.assert_array_equal(plain.greedy_bins(obs).numpy(), expected)
    einsum = variant(policy, jit_compile=True, matrix_kernels=False)  # the XLA decoder before
    np.testing.assert_array_equal(einsum.greedy_bins(obs).numpy(), expected)
    # Not a degenerate decoder: over 256 rows the chosen bins differ. (At batch 1 a random
    # network can pick the same bin in all dimensions: seen once in CI for bc, 5 dims.)
    if batch > 1:
        assert len(np.unique(expected)) > 1


@pytest.mark.parametrize("mixed_precision", [False, True])
def test_matrix_kernels_give_the_einsum_kernels_outputs(mixed_precision):
    """The step's [E, N*H] matrices (decode_weights) compute what the Keras layers compute."""
    agent, b = agent_and_batch("hl_gauss", 6, mixed_precision=mixed_precision)
    net, obs = agent.q_network, b["observation"]
    weights = net.decode_weights()
    assert len(weights) == 2 and all(len(w) == 6 for w in weights)
    assert weights[0][0].shape == (16, 16) and weights[0][3].shape == (2, 8)  # [E, N*H], [N, H]
    bins = tf.random.uniform([32, 6], 0, BINS, tf.int32, seed=4)
    tol = 0.05 if mixed_precision else 1e-5  # bfloat16: another rounding order, ~3 digits
    keras, cache_k = net.decode_start(obs)
    matrix, cache_m = net.decode_start(obs, None, weights)
    for i in range(1, 7):
        np.testing.assert_allclose(matrix, keras, atol=tol)
        if i < 6:
            keras, cache_k = net.decode_step(bins[:, i - 1], i, cache_k)
            matrix, cache_m = net.decode_step(bins[:, i - 1], i, cache_m, weights)
    keys_m, keys_k = (tf.cast(c[-1][0], tf.float32) for c in (cache_m, cache_k))  # block 2
    np.testing.assert_allclose(keys_m, keys_k, atol=tol)
    assert np.std(matrix.numpy()) > 1e-3  # outputs that vary, not a constant


def test_cached_step_matches_full_pass_outputs():
    """Cache outputs at every position equal the full pass on the final bins."""
    agent, b = agent_and_batch("hl_gauss", 6)
    net, obs = agent.q_network, b["observation"]
    bins = tf.random.uniform([32, 6], 0, BINS, tf.int32, seed=3)
    full = net((obs, bins))[0]
    outputs, cache = net.decode_start(obs)
    steps = [outputs]
    for i in range(1, 6):
        outputs, cache = net.decode_step(bins[:, i - 1], i, cache)
        steps.append(outputs)
    np.testing.assert_allclose(tf.stack(steps, 1), full, atol=1e-5)


LOAD_SCRIPT = """
import json, sys
import tensorflow as tf
from tf_agents.trajectories import time_step as ts
policy = tf.saved_model.load(sys.argv[1])
out = []
for batch in json.loads(sys.argv[2]):
    obs = {"state": tf.constant(batch["state"], tf.float32),
           "instruction": tf.constant(batch["instruction"])}
    n = obs["state"].shape[0]
    step = ts.TimeStep(tf.zeros([n], tf.int32), tf.zeros([n]), tf.ones([n]), obs)
    out.append(policy.action(step).action.numpy().tolist())
print(json.dumps(out))
"""


def test_exported_default_xla_policy_loads_and_acts_at_batch_1_and_5(tmp_path):
    """The default export holds the XLA decoder; `tf.saved_model.load` alone runs it at two
    batch sizes (each compiles on its first call) with the uncached decoder's actions."""
    agent, b = agent_and_batch("hl_gauss", 8, batch=5)
    policy, obs = agent.policy, b["observation"]
    assert agent._config.xla_decoder and not agent._config.use_xla
    policy_saver.PolicySaver(policy, batch_size=None).save(str(tmp_path / "policy"))
    assert b"_XlaMustCompile" in (tmp_path / "policy" / "saved_model.pb").read_bytes()
    batches, expected = [], []
    for rows in (slice(0, 1), slice(0, 5)):
        part = {k: v[rows] for k, v in obs.items()}
        policy._use_cache = False
        expected.append(policy.action(ts.restart(part, part["state"].shape[0])).action.numpy())
        policy._use_cache = True
        texts = [t.decode() for t in part["instruction"].numpy()]
        batches.append({"state": part["state"].numpy().tolist(), "instruction": texts})
    result = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, str(tmp_path / "policy"), json.dumps(batches)],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    actions = json.loads(result.stdout.strip().splitlines()[-1])
    assert [np.shape(a) for a in actions] == [(1, 8), (5, 8)]
    for got, want in zip(actions, expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)
    assert len(np.unique(np.array(actions[1]))) > 1


def test_config_decoder_and_train_step_xla_are_separate_settings(tmp_path):
    assert TrainConfig().xla_decoder and not TrainConfig().use_xla
    # A config.json written before xla_decoder existed (use_xla covered both) still loads.
    path = tmp_path / "config.json"
    old = json.loads(TrainConfig().to_json())
    del old["xla_decoder"]
    for use_xla in (False, True):
        path.write_text(json.dumps({**old, "use_xla": use_xla}))
        config = TrainConfig.from_file(path)
        assert (config.use_xla, config.xla_decoder) == (use_xla, True)
    off = benchmarks.make_agent(tiny_config(use_xla=True, xla_decoder=False))
    assert not isinstance(off.policy._decode, tf.types.experimental.PolymorphicFunction)
    assert off._grads_fn is not off._loss_and_grads  # the train step is still XLA-compiled


def test_bfloat16_matches_float32():
    """Mixed precision: bfloat16 compute, float32 outputs and losses, same variables."""
    f32, b = agent_and_batch("hl_gauss", 4, batch=64)
    tf.keras.utils.set_random_seed(0)
    bf16 = benchmarks.make_agent(tiny_config(mixed_precision=True), action_dims=4)
    for name in ("q_network", "target_q_network"):
        pairs = zip(getattr(bf16, name).variables, getattr(f32, name).variables, strict=True)
        for copy, source in pairs:
            assert copy.dtype == tf.float32 and copy.shape == source.shape
            copy.assign(source)
    inputs = (b["observation"], b["action_bins"])
    logits16, logits32 = bf16.q_network(inputs)[0], f32.q_network(inputs)[0]
    assert logits16.dtype == tf.float32  # value distributions are float32
    assert not np.array_equal(logits16.numpy(), logits32.numpy())  # bfloat16 did compute
    np.testing.assert_allclose(logits16, logits32, atol=0.1)  # bfloat16: ~3 digits
    q16, q32 = (losses.expected_value(x, *tiny_config().model.value_support())
                for x in (logits16, logits32))  # fmt: skip
    # bfloat16 keeps 8 mantissa bits (~0.4% per op): Q (on a [0, 1] scale) within 2% at
    # worst and 0.5% on average; the same for the TD targets.
    np.testing.assert_allclose(q16, q32, atol=0.02)
    assert np.mean(np.abs(q16 - q32)) < 0.005
    np.testing.assert_allclose(bf16.td_targets(b), f32.td_targets(b), atol=0.02)
    loss16, loss32 = bf16.loss(b).loss.numpy(), f32.loss(b).loss.numpy()
    np.testing.assert_allclose(loss16, loss32, rtol=0.01)
    # Training in bfloat16 keeps float32 variables and reduces the loss like float32 does.
    train = tf.function(bf16.train)
    for _ in range(30):
        result = train(b)
    assert np.isfinite(result.loss.numpy()) and result.loss.numpy() < loss16 - 0.1
    assert all(v.dtype == tf.float32 for v in bf16.q_network.trainable_variables)
