"""QTransformerNetwork: output shapes, causality, and the in-graph instruction vocabulary."""

import numpy as np
import pytest
import tensorflow as tf

from qtransformer.model.network import QTransformerNetwork, word_vocabulary
from qtransformer.training.config import ModelConfig

TINY = ModelConfig(embed_dim=16, num_layers=1, num_heads=2, value_bins=5, head_rank=4)
INSTRUCTIONS = ["Put the red cube in the blue bowl.", "lift the cube"]


def make(head="factorised", value_bins=5, image=False, dims=3, bins=7, state_stats=None):
    spec = {"state": tf.TensorSpec([4], tf.float32), "instruction": tf.TensorSpec([], tf.string)}
    if image:
        spec["image"] = tf.TensorSpec([16, 16, 3], tf.uint8)
    model = ModelConfig(**{**TINY.__dict__, "head": head})
    vocabulary = word_vocabulary(INSTRUCTIONS)
    net = QTransformerNetwork(spec, dims, bins, model, vocabulary, value_bins, state_stats)
    net.create_variables()
    return net


def observation(batch=5, image=False, seed=0):
    rng = np.random.default_rng(seed)
    obs = {
        "state": tf.constant(rng.normal(size=(batch, 4)), tf.float32),
        "instruction": tf.constant(["lift the cube"] * (batch - 1) + ["an unknown phrase"]),
    }
    if image:
        obs["image"] = tf.constant(rng.integers(0, 255, (batch, 16, 16, 3)), tf.uint8)
    return obs


@pytest.mark.parametrize("head", ["factorised", "full"])
@pytest.mark.parametrize("value_bins", [5, None])
def test_output_shapes(head, value_bins):
    net = make(head, value_bins, image=head == "full")
    bins = tf.zeros([5, 3], tf.int32)
    out, state = net((observation(image=head == "full"), bins))
    # [B, D, A, V] for the classification losses, [B, D, A] for MSE / BC.
    assert out.shape == ((5, 3, 7, 5) if value_bins else (5, 3, 7))
    assert state == ()
    assert np.all(np.isfinite(out.numpy()))


def test_factorised_head_has_fewer_weights():
    def head_weights(net):
        names = ("/full_head/", "/head_in/", "/head_out/")
        return sum(v.shape.num_elements() for v in net.variables if any(n in v.name for n in names))

    # full: E*A*V + A*V = 16*7*5 + 35; factorised: E*R + R*A*V + A*V = 16*4 + 4*35 + 35
    assert head_weights(make("full")) == 16 * 35 + 35
    assert head_weights(make("factorised")) == 16 * 4 + 4 * 35 + 35


def test_causal_output_at_position_i_sees_only_earlier_bins():
    net = make()
    obs = observation()
    a = tf.constant([[1, 2, 3]] * 5, tf.int32)
    base = net((obs, a))[0].numpy()
    # The last dimension's bin is never an input: nothing changes.
    np.testing.assert_array_equal(net((obs, a + [0, 0, 3]))[0].numpy(), base)
    # Changing a_1 (position 1's input) leaves position 0 and changes positions 1 and 2.
    changed = net((obs, a + [0, 3, 0]))[0].numpy()
    np.testing.assert_allclose(changed[:, 0], base[:, 0], atol=1e-6)
    assert np.abs(changed[:, 1:] - base[:, 1:]).max() > 1e-4


def test_vocabulary_words_and_oov():
    assert word_vocabulary(INSTRUCTIONS) == [
        "blue", "bowl", "cube", "in", "lift", "put", "red", "the",
    ]  # fmt: skip
    net = make()
    ids = net.instruction_ids(tf.constant(["Lift the PURPLE cube!", ""])).numpy()
    # ids are 1 + index in the sorted vocabulary; 0 = OOV ("purple"), -1 = padding.
    np.testing.assert_array_equal(ids, [[5, 8, 0, 3], [-1, -1, -1, -1]])


def test_instruction_changes_output_and_ids_match_strings():
    net = make()
    obs = observation()
    bins = tf.zeros([5, 3], tf.int32)
    out = net((obs, bins))[0].numpy()
    other = dict(obs, instruction=tf.constant(["put the red cube in the blue bowl"] * 5))
    assert np.abs(net((other, bins))[0].numpy() - out).max() > 1e-4
    by_ids = dict(obs, instruction=net.instruction_ids(obs["instruction"]))
    np.testing.assert_allclose(net.call((by_ids, bins))[0].numpy(), out, atol=1e-6)


def test_state_is_standardised_with_dataset_statistics():
    mean, std = np.array([1.0, -2.0, 0.5, 0.0]), np.array([2.0, 0.5, 4.0, 0.0])
    net = make(state_stats=(mean, std))
    plain = net.copy(state_stats=None)
    plain.create_variables()
    for target, source in zip(plain.trainable_variables, net.trainable_variables, strict=True):
        target.assign(source)
    obs, bins = observation(), tf.zeros([5, 3], tf.int32)
    # (x - mean) / std with std floored at 0.01 (the constant 4th feature).
    scaled = dict(obs, state=(obs["state"] - mean) / np.maximum(std, 0.01))
    np.testing.assert_allclose(
        net((obs, bins))[0].numpy(), plain((scaled, bins))[0].numpy(), rtol=1e-4, atol=1e-4
    )
