"""Throughput and latency of the Q-Transformer on synthetic batches (no dataset needed).

- `train_samples_per_s(config)`: transitions per second through the compiled train step.
- `head_ratio(config)`: train throughput of the factorised head over the full head.
- `fast_path(config, action_dims)`: each gain of the fast path as a ratio measured in one
  process: train with s' padded to D tokens vs one token, with and without XLA (and
  bfloat16 mixed precision); greedy decoding uncached vs key/value-cached vs cached + XLA
  (the default, `TrainConfig.xla_decoder`), and cached + XLA with the attention kernels as
  Keras' [E, N, H] einsum kernels (the XLA decoder before qtransformer/model/transformer.py fed it
  matrices). The slow variants are private switches (`QTransformerAgent._pad_next_state`,
  `QTransformerPolicy._use_cache`, `QTransformerPolicy._matrix_kernels`) that only this
  module sets.
- `paper_config()`: a paper-like size (256 action bins, width 256, 4 layers; measured with
  `PAPER_ACTION_DIMS` = 8 action dimensions as in RT-1 / Q-Transformer); `qtransformer
  bench` (eval/bench.py) runs the above for it and for the default model.

Synthetic batches follow the training-batch contract (`qtransformer.training.data`): state S=16,
D action dims (4 unless given) in [-1, 1], random bins, sparse 0/1 rewards.
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

from qtransformer.training.config import TrainConfig

INSTRUCTIONS = ["pick up the red cube", "put the red cube in the blue bowl"]
PAPER_ACTION_DIMS = 8


def specs(state_dim: int = 16, action_dims: int = 4):
    """(time_step_spec, action_spec) of the policy contract with a `state` observation."""
    obs = {
        "state": tf.TensorSpec([state_dim], tf.float32, name="state"),
        "instruction": tf.TensorSpec([], tf.string, name="instruction"),
    }
    action = tensor_spec.BoundedTensorSpec([action_dims], tf.float32, -1.0, 1.0, name="action")
    return ts.time_step_spec(obs), action


def synthetic_batch(
    batch_size: int, action_bins: int, state_dim: int = 16, action_dims: int = 4, seed: int = 0
) -> dict:
    """A training batch dict (contract section 3) of random but valid values."""
    rng = np.random.default_rng(seed)

    def obs():
        text = rng.choice(INSTRUCTIONS, batch_size)
        return {
            "state": tf.constant(rng.normal(size=(batch_size, state_dim)), tf.float32),
            "instruction": tf.constant(text.astype(object)),
        }

    bins = rng.integers(0, action_bins, size=(batch_size, action_dims))
    reward = (rng.random(batch_size) < 0.1).astype(np.float32)
    return {
        "observation": obs(),
        "action": tf.constant(bins / (action_bins - 1) * 2 - 1, tf.float32),
        "action_bins": tf.constant(bins, tf.int32),
        "reward": tf.constant(reward),
        "discount": tf.constant(np.where(reward > 0, 0.0, 0.98**3), tf.float32),
        "next_observation": obs(),
        "mc_return": tf.constant(reward * rng.random(batch_size), tf.float32),
        "is_terminal": tf.constant(reward > 0),
    }


def make_agent(config: TrainConfig, action_dims: int = 4):
    from qtransformer.model.agent import QTransformerAgent
    from qtransformer.model.network import word_vocabulary

    time_step_spec, action_spec = specs(action_dims=action_dims)
    agent = QTransformerAgent(time_step_spec, action_spec, config, word_vocabulary(INSTRUCTIONS))
    agent.initialize()
    return agent


def train_samples_per_s(
    config: TrainConfig | None = None,
    steps: int = 50,
    action_dims: int = 4,
    pad_next_state: bool = False,
) -> float:
    """Transitions/s of `agent.train` under tf.function on one fixed synthetic batch.

    pad_next_state: run the target network on s' over all D positions (the old step).
    """
    config = config or TrainConfig()
    agent = make_agent(config, action_dims)
    agent._pad_next_state = pad_next_state
    batch = synthetic_batch(
        config.data.batch_size, config.data.action_bins, action_dims=action_dims
    )
    train = tf.function(agent.train)
    train(batch)  # trace and warm up
    start = time.perf_counter()
    for _ in range(steps):
        loss = train(batch).loss
    loss.numpy()
    return steps * config.data.batch_size / (time.perf_counter() - start)


def head_ratio(config: TrainConfig | None = None, steps: int = 30, action_dims: int = 4) -> dict:
    """Train throughput with each head and factorised/full (> 1: factorised is faster)."""
    config = config or TrainConfig()
    rates = {
        head: train_samples_per_s(config.replace(head=head), steps, action_dims)
        for head in ("factorised", "full")
    }
    return {**rates, "factorised_over_full": rates["factorised"] / rates["full"]}


def interleaved_seconds(fns: dict, calls: int, rounds: int) -> dict:
    """Median wall seconds per call of each fn() -> tensor, timed in interleaved rounds.

    Every round times each variant once (`calls` calls), so a load change on a shared
    machine hits all variants alike and the ratios stay meaningful.
    """
    return {name: wall for name, (wall, _) in interleaved_wall_and_cpu(fns, calls, rounds).items()}


def interleaved_wall_and_cpu(fns: dict, calls: int, rounds: int) -> dict:
    """{name: (median wall s, median process CPU s)} per call, as `interleaved_seconds`."""
    wall = {name: [] for name in fns}
    cpu = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(calls):
                out = fn()
            out.numpy()
            wall[name].append((time.perf_counter() - start) / calls)
            cpu[name].append((time.process_time() - start_cpu) / calls)
    return {name: (float(np.median(wall[name])), float(np.median(cpu[name]))) for name in fns}


def _train_fn(
    config: TrainConfig, action_dims: int, pad_next_state: bool, loss_as_before: bool = False
):
    agent = make_agent(config, action_dims)
    agent._pad_next_state = pad_next_state
    agent._loss_as_before = loss_as_before
    batch = synthetic_batch(
        config.data.batch_size, config.data.action_bins, action_dims=action_dims
    )
    train = tf.function(agent.train)
    train(batch)  # trace, compile and warm up
    return lambda: train(batch).loss


# Decoder variants of `fast_path`: (key/value cache, XLA, [E, N*H] matrix kernels).
DECODERS = {
    "uncached": (False, False, True),
    "cached": (True, False, True),
    "cached_xla_einsum": (True, True, False),
    "cached_xla": (True, True, True),
}


def _decode_fns(
    config: TrainConfig, action_dims: int, cache: bool, jit: bool, matrix_kernels: bool = True
) -> tuple[dict, dict]:
    """({batch size: fn() -> actions}, {batch size: seconds of the first call}) of a decoder.

    The first call traces the policy and, with XLA, compiles it for that batch size.
    """
    from qtransformer.model.policy import QTransformerPolicy

    policy = make_agent(config, action_dims).policy
    policy = QTransformerPolicy(
        policy.time_step_spec, policy.action_spec, policy._q_network, policy._tokenizer,
        policy._value_range, jit_compile=jit,
    )  # fmt: skip
    policy._use_cache = cache
    policy._matrix_kernels = matrix_kernels
    action = tf.function(policy.action)
    fns, first_call = {}, {}
    for batch_size in (1, 256):
        obs = synthetic_batch(batch_size, config.data.action_bins, action_dims=action_dims)
        step = ts.restart(obs["observation"], batch_size)
        start = time.perf_counter()
        action(step).action.numpy()  # trace, compile and warm up
        first_call[batch_size] = time.perf_counter() - start
        fns[batch_size] = lambda step=step: action(step).action
    return fns, first_call


def fast_path(
    config: TrainConfig,
    action_dims: int,
    steps: int,
    calls: int,
    rounds: int = 3,
) -> dict:
    """Before/after figures of the fast path, all measured in this process, interleaved.

    "before" is the step and decoder as they were: s' padded to D tokens, the loss built from
    the log-softmax of all [B, D, A, V] logits, no XLA, no cache ("padded").
    "default" is what `config` selects (`use_xla` for the step, `xla_decoder` for decoding).
    Each variant runs `rounds` times `steps` train steps (`calls` decoder calls); the
    median is reported. Ratios > 1 mean the fast variant is faster. The bfloat16 step is
    timed too (slower on this CPU: docs/performance.md, "The fast path"), and the step with
    `td_sigma` = `conservative_sigma` = 1 (the TD term over every bin).
    """
    base = config.replace(use_xla=False, mixed_precision=False)
    xla = base.replace(use_xla=True)
    variants = {  # name: (config, s' padded, loss as before)
        "padded": (base, True, True),
        "one_token_loss_before": (base, False, True),
        "one_token": (base, False, False),
        "padded_xla": (xla, True, False),
        "one_token_xla": (xla, False, False),
        "one_token_bf16": (base.replace(mixed_precision=True), False, False),
        # the clean-demo setting: the TD term over every bin (docs/stall.md section 7)
        "one_token_td1cs1": (base.replace(td_sigma=1.0, conservative_sigma=1.0), False, False),
    }
    fns = {name: _train_fn(cfg, action_dims, *how) for name, (cfg, *how) in variants.items()}
    seconds = interleaved_seconds(fns, steps, rounds)
    train = {name: config.data.batch_size / s for name, s in seconds.items()}
    now = "one_token_xla" if config.use_xla else "one_token"
    return {
        "action_dims": action_dims,
        "rounds": rounds,
        "train_samples_per_s": train,
        "train_one_token_over_padded": train["one_token_loss_before"] / train["padded"],
        "train_loss_rewrite_over_before": train["one_token"] / train["one_token_loss_before"],
        "train_one_token_over_padded_xla": train["one_token_xla"] / train["padded_xla"],
        "train_xla_over_plain": train["one_token_xla"] / train["one_token"],
        "train_default_over_before": train[now] / train["padded"],
        "train_bf16_over_float32": train["one_token_bf16"] / train["one_token"],
        "train_td1cs1_over_default": train["one_token_td1cs1"] / train["one_token"],
        **decode_speed(config, action_dims, calls, rounds),
    }


def decode_speed(config: TrainConfig, action_dims: int, calls: int, rounds: int = 3) -> dict:
    """Greedy decoding latency (batch 1) and actions/s (batch 256) of every `DECODERS`
    variant, timed interleaved; "default" is the one `config.xla_decoder` selects."""
    config = config.replace(mixed_precision=False)
    decode_fns, first_call = {}, {}
    for name, (cache, jit, matrix) in DECODERS.items():
        fns, first = _decode_fns(config, action_dims, cache, jit, matrix)
        first_call[name] = first[1]
        for batch_size, fn in fns.items():
            decode_fns[(name, batch_size)] = fn
    decode = interleaved_seconds(decode_fns, calls, rounds)
    latency = {name: decode[(name, 1)] for name in DECODERS}
    per_s = {name: 256 / decode[(name, 256)] for name in DECODERS}
    default = "cached_xla" if config.xla_decoder else "cached"
    return {
        "latency_s_batch1": latency,
        "actions_per_s_batch256": per_s,
        "first_call_s_batch1": first_call,
        "latency_uncached_over_cached_batch1": latency["uncached"] / latency["cached"],
        "actions_per_s_cached_over_uncached_batch256": per_s["cached"] / per_s["uncached"],
        "latency_plain_over_xla_batch1": latency["cached"] / latency["cached_xla"],
        "actions_per_s_xla_over_plain_batch256": per_s["cached_xla"] / per_s["cached"],
        "latency_einsum_over_matrix_kernels_batch1": (
            latency["cached_xla_einsum"] / latency["cached_xla"]
        ),
        "default_decoder": default,
        "default_latency_s_batch1": latency[default],
        "default_actions_per_s_batch256": per_s[default],
        "latency_before_over_default_batch1": latency["uncached"] / latency[default],
    }


def paper_config() -> TrainConfig:
    """A paper-like size: 256 action bins, wider and deeper transformer."""
    return TrainConfig().replace(action_bins=256, embed_dim=256, num_layers=4, num_heads=8)
