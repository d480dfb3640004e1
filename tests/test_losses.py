"""Losses against independent implementations: math.erf, hand-worked cases, numpy loops."""

import math

import numpy as np
import pytest
import tensorflow as tf

from qtransformer.model import losses


def hl_gauss_reference(y, v_min, v_max, m, sigma):
    """Scalar HL-Gauss with math.erf, written straight from the paper's formula."""
    y = min(max(y, v_min), v_max)
    edges = [v_min + (v_max - v_min) * i / m for i in range(m + 1)]
    cdf = [math.erf((e - y) / (math.sqrt(2) * sigma)) for e in edges]
    z = cdf[-1] - cdf[0]
    return [(cdf[i + 1] - cdf[i]) / z for i in range(m)]


def c51_reference(probs, reward, discount, v_min, v_max):
    """Bellemare et al. 2017, Algorithm 1, with numpy loops (floor/ceil form)."""
    m = len(probs)
    dz = (v_max - v_min) / m
    centers = [v_min + dz * (i + 0.5) for i in range(m)]
    out = np.zeros(m)
    for j, p in enumerate(probs):
        tz = min(max(reward + discount * centers[j], centers[0]), centers[-1])
        b = (tz - centers[0]) / dz
        lo, hi = math.floor(b), math.ceil(b)
        if lo == hi:
            out[lo] += p
        else:
            out[lo] += p * (hi - b)
            out[hi] += p * (b - lo)
    return out


def test_bin_centers_by_hand():
    np.testing.assert_allclose(losses.bin_centers(0.0, 1.0, 4), [0.125, 0.375, 0.625, 0.875])
    np.testing.assert_allclose(losses.bin_centers(-1.0, 1.0, 2), [-0.5, 0.5])


@pytest.mark.parametrize("y", [-0.3, 0.0, 0.13, 0.5, 0.77, 1.0, 1.4])
@pytest.mark.parametrize("m,sigma", [(11, None), (51, None), (5, 0.3)])
def test_hl_gauss_matches_math_erf(y, m, sigma):
    expected_sigma = 0.75 / m if sigma is None else sigma
    expected = hl_gauss_reference(y, 0.0, 1.0, m, expected_sigma)
    got = losses.hl_gauss_probs(tf.constant(y), 0.0, 1.0, m, sigma).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert abs(got.sum() - 1.0) < 1e-6


def test_hl_gauss_mean_tracks_value():
    # Away from the support's ends the Gaussian is nearly untruncated: mean ~= y.
    y = tf.constant([0.3, 0.5, 0.62])
    probs = losses.hl_gauss_probs(y, 0.0, 1.0, 51)
    mean = tf.reduce_sum(probs * losses.bin_centers(0.0, 1.0, 51), -1)
    np.testing.assert_allclose(mean, y, atol=1e-3)


def test_two_hot_by_hand():
    # centres of 4 bins on [0, 1]: 0.125 0.375 0.625 0.875, width 0.25.
    # y = 0.5 sits halfway between 0.375 and 0.625 -> [0, .5, .5, 0].
    # y = 0.4 -> p1 = (0.625 - 0.4)/0.25 = 0.9, p2 = 0.1.
    # y = 0.625 is a centre -> one-hot; y = 0.0 and 1.2 clip to the outer centres.
    got = losses.two_hot_probs(tf.constant([0.5, 0.4, 0.625, 0.0, 1.2]), 0.0, 1.0, 4).numpy()
    expected = [[0, 0.5, 0.5, 0], [0, 0.9, 0.1, 0], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1]]
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_two_hot_is_mean_preserving():
    y = tf.random.uniform([100], 0.125, 0.875, seed=1)
    probs = losses.two_hot_probs(y, 0.0, 1.0, 4)
    np.testing.assert_allclose(tf.reduce_sum(probs * losses.bin_centers(0, 1, 4), -1), y, atol=1e-6)
    np.testing.assert_allclose(tf.reduce_sum(probs, -1), 1.0, atol=1e-6)


@pytest.mark.parametrize("reward,discount", [(0.0, 0.9), (1.0, 0.0), (0.3, 0.5), (0.9, 0.99)])
def test_categorical_projection_matches_algorithm_1(reward, discount):
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(7))
    got = losses.categorical_projection(tf.constant(probs, tf.float32), reward, discount, 0.0, 1.0)
    np.testing.assert_allclose(got, c51_reference(probs, reward, discount, 0.0, 1.0), atol=1e-6)


def test_categorical_projection_batched():
    probs = tf.nn.softmax(tf.random.normal([3, 2, 5], seed=2))
    reward = tf.constant([[0.0, 1.0], [0.2, 0.4], [0.5, 0.0]])
    discount = tf.constant([[0.9, 0.0], [0.5, 1.0], [0.0, 0.7]])
    got = losses.categorical_projection(probs, reward, discount, 0.0, 1.0).numpy()
    for i in range(3):
        for j in range(2):
            ref = c51_reference(probs[i, j].numpy(), reward[i, j], discount[i, j], 0.0, 1.0)
            np.testing.assert_allclose(got[i, j], ref, atol=1e-6)


def test_expected_value_and_cross_entropy_by_hand():
    # logits [0, ln 3] -> softmax [0.25, 0.75]; centres of 2 bins on [0, 1]: 0.25, 0.75.
    # Q = 0.25 * 0.25 + 0.75 * 0.75 = 0.625.
    logits = tf.constant([0.0, math.log(3.0)])
    assert abs(float(losses.expected_value(logits, 0.0, 1.0)) - 0.625) < 1e-6
    # CE against [0.5, 0.5] = -(0.5 ln 0.25 + 0.5 ln 0.75).
    ce = losses.cross_entropy(logits, tf.constant([0.5, 0.5]))
    assert abs(float(ce) + 0.5 * math.log(0.25) + 0.5 * math.log(0.75)) < 1e-6
    assert abs(float(losses.mse(tf.constant(0.2), tf.constant(0.7))) - 0.125) < 1e-7


@pytest.mark.parametrize("shape", [[6], [6, 3], [6, 3, 4]])
@pytest.mark.parametrize("kind", ["hl_gauss", "two_hot", "c51"])
def test_batch_shapes_and_finite_gradients(shape, kind):
    m = 9
    y = tf.random.uniform(shape, -0.5, 1.5, seed=3)  # some targets outside the support
    target = losses.target_probs(kind, y, 0.0, 1.0, m)
    assert target.shape == shape + [m]
    logits = tf.Variable(tf.random.normal(shape + [m], stddev=1e4, seed=4))  # extreme logits
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(losses.cross_entropy(logits, target))
        q = tf.reduce_mean(losses.expected_value(logits, 0.0, 1.0))
    grad = tape.gradient(loss, logits)
    for t in (target, loss, q, grad):
        assert np.all(np.isfinite(t.numpy()))
    assert float(tf.reduce_max(tf.abs(grad))) > 0


def test_mse_gradient():
    pred = tf.Variable([0.2, 0.9])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(losses.mse(pred, tf.constant([0.7, 0.9])))
    np.testing.assert_allclose(tape.gradient(loss, pred), [-0.5, 0.0], atol=1e-7)


def test_hl_gauss_extreme_targets_are_finite():
    got = losses.hl_gauss_probs(tf.constant([-1e9, 1e9, 0.5]), 0.0, 1.0, 51)
    assert np.all(np.isfinite(got.numpy()))
    assert got.numpy()[0].argmax() == 0 and got.numpy()[1].argmax() == 50


def test_bad_support_raises():
    with pytest.raises(ValueError, match="v_max > v_min"):
        losses.bin_centers(1.0, 0.0, 5)
    with pytest.raises(ValueError, match="num_bins"):
        losses.hl_gauss_probs(tf.constant(0.5), 0.0, 1.0, 1)
    with pytest.raises(ValueError, match="unknown classification loss"):
        losses.target_probs("huber", tf.constant(0.5), 0.0, 1.0, 5)
