"""Value-distribution targets and losses (pure TensorFlow functions).

Implements the classification view of value learning of Farebrother et al.,
"Stop Regressing: Training Value Functions via Classification for Scalable
Deep RL" (ICML 2024): a scalar value y on [v_min, v_max] becomes a categorical
target distribution over `num_bins` equal bins, the network predicts logits over
the same bins, and learning minimises cross-entropy. Q is the expectation of the
predicted distribution over the bin centres.

Every function here is pure (no variables, no global state) and works on any
leading batch shape: `y` of shape `S` gives targets of shape `S + (num_bins,)`.
"""

from __future__ import annotations

import math

import tensorflow as tf

_SQRT2 = math.sqrt(2.0)


def bin_edges(v_min: float, v_max: float, num_bins: int) -> tf.Tensor:
    """Edges e_0..e_m of `num_bins` equal bins: linspace(v_min, v_max, m + 1)."""
    _check_support(v_min, v_max, num_bins)
    return tf.linspace(tf.constant(v_min, tf.float32), tf.constant(v_max, tf.float32), num_bins + 1)


def bin_centers(v_min: float, v_max: float, num_bins: int) -> tf.Tensor:
    """Centres of `num_bins` equal bins on [v_min, v_max].

    c_i = v_min + (i + 1/2) * (v_max - v_min) / num_bins, i = 0..num_bins-1.
    Example: bin_centers(0, 1, 4) = [0.125, 0.375, 0.625, 0.875].
    """
    _check_support(v_min, v_max, num_bins)
    width = (v_max - v_min) / num_bins
    return v_min + width * (tf.range(num_bins, dtype=tf.float32) + 0.5)


def hl_gauss_probs(
    y: tf.Tensor, v_min: float, v_max: float, num_bins: int, sigma: float | None = None
) -> tf.Tensor:
    """HL-Gauss target: a Gaussian N(y, sigma^2) integrated over each bin.

    With edges e_0..e_m = linspace(v_min, v_max, m + 1) and y clipped to
    [v_min, v_max]:

        p_i = (erf((e_i - y) / (sqrt(2) sigma)) - erf((e_{i-1} - y) / (sqrt(2) sigma)))
              / (erf((e_m - y) / (sqrt(2) sigma)) - erf((e_0 - y) / (sqrt(2) sigma)))

    The denominator renormalises the mass that falls outside the support.
    sigma defaults to 0.75 bin widths, the paper's recommended ratio.

    Returns: float32 tensor of shape `y.shape + (num_bins,)`, rows summing to 1.
    """
    if sigma is None:
        sigma = 0.75 * (v_max - v_min) / num_bins
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    # float64 inside: differences of erf values near +-1 cancel badly in float32.
    y = tf.clip_by_value(tf.cast(y, tf.float64), v_min, v_max)[..., tf.newaxis]
    _check_support(v_min, v_max, num_bins)
    edges = tf.linspace(
        tf.constant(v_min, tf.float64), tf.constant(v_max, tf.float64), num_bins + 1
    )
    cdf = tf.math.erf((edges - y) / (_SQRT2 * sigma))
    z = cdf[..., -1:] - cdf[..., :1]
    return tf.cast((cdf[..., 1:] - cdf[..., :-1]) / z, tf.float32)


def two_hot_probs(y: tf.Tensor, v_min: float, v_max: float, num_bins: int) -> tf.Tensor:
    """Two-hot target: mass on the two bin centres around y, mean-preserving.

    y is clipped to [c_0, c_{m-1}] (the outer centres). With c_k <= y <= c_{k+1}:
    p_k = (c_{k+1} - y) / w, p_{k+1} = (y - c_k) / w, w the bin width, so
    sum_i p_i c_i = y. A y exactly on a centre gives a one-hot vector.

    Returns: float32 tensor of shape `y.shape + (num_bins,)`.
    """
    centers = bin_centers(v_min, v_max, num_bins)
    width = (v_max - v_min) / num_bins
    y = tf.clip_by_value(tf.cast(y, tf.float32), centers[0], centers[-1])[..., tf.newaxis]
    # Triangle kernel of half-width w around each centre: exactly the two-hot weights.
    return tf.nn.relu(1.0 - tf.abs(y - centers) / width)


def categorical_projection(
    probs: tf.Tensor,
    reward: tf.Tensor,
    discount: tf.Tensor,
    v_min: float,
    v_max: float,
) -> tf.Tensor:
    """C51 projection of the distribution of `reward + discount * Z` onto the support.

    `probs` [..., m] are probabilities on the bin centres c_j. Each atom moves to
    Tz_j = clip(reward + discount * c_j, v_min', v_max') (clipped to the outer
    centres) and its mass is split between the two neighbouring centres by
    linear interpolation (Bellemare et al. 2017, Algorithm 1):

        (Phi Tz)_i = sum_j [1 - |Tz_j - c_i| / w]_0^1 * probs_j

    `reward` and `discount` broadcast against `probs[..., 0]`.
    Returns: float32 tensor shaped like `probs`, rows summing to sum(probs).
    """
    num_bins = probs.shape[-1]
    centers = bin_centers(v_min, v_max, num_bins)
    width = (v_max - v_min) / num_bins
    reward = tf.cast(reward, tf.float32)[..., tf.newaxis]
    discount = tf.cast(discount, tf.float32)[..., tf.newaxis]
    tz = tf.clip_by_value(reward + discount * centers, centers[0], centers[-1])  # [..., m]
    # weight[..., i, j]: how much of atom j lands on centre i.
    weight = tf.nn.relu(1.0 - tf.abs(tz[..., tf.newaxis, :] - centers[:, tf.newaxis]) / width)
    return tf.reduce_sum(weight * tf.cast(probs, tf.float32)[..., tf.newaxis, :], axis=-1)


def expected_value(logits: tf.Tensor, v_min: float, v_max: float) -> tf.Tensor:
    """Q = sum_i softmax(logits)_i * c_i over the bin centres. Shape `logits.shape[:-1]`."""
    centers = bin_centers(v_min, v_max, logits.shape[-1])
    return tf.reduce_sum(tf.nn.softmax(logits, axis=-1) * centers, axis=-1)


def cross_entropy(logits: tf.Tensor, target_probs: tf.Tensor) -> tf.Tensor:
    """-sum_i p_i log softmax(logits)_i, per element (shape `logits.shape[:-1]`).

    Uses log_softmax, so extreme logits (|l| ~ 1e4) give finite values.
    """
    target_probs = tf.stop_gradient(tf.cast(target_probs, tf.float32))
    return -tf.reduce_sum(target_probs * tf.nn.log_softmax(logits, axis=-1), axis=-1)


def mse(prediction: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """0.5 * (prediction - target)^2 per element: the regression baseline."""
    return 0.5 * tf.square(prediction - tf.stop_gradient(tf.cast(target, tf.float32)))


TARGET_DISTRIBUTIONS = {"hl_gauss": hl_gauss_probs, "two_hot": two_hot_probs}


def target_probs(
    loss: str, y: tf.Tensor, v_min: float, v_max: float, num_bins: int, sigma_ratio: float = 0.75
) -> tf.Tensor:
    """Target distribution for scalar targets y under the named classification loss.

    `c51` here projects a point mass at y (a Dirac at y is the distribution of
    r + gamma * Z when Z is itself a point mass), i.e. the same as two-hot.
    """
    if loss == "hl_gauss":
        return hl_gauss_probs(y, v_min, v_max, num_bins, sigma_ratio * (v_max - v_min) / num_bins)
    if loss in ("two_hot", "c51"):
        return two_hot_probs(y, v_min, v_max, num_bins)
    raise ValueError(f"unknown classification loss {loss!r}; valid: hl_gauss, two_hot, c51")


def _check_support(v_min: float, v_max: float, num_bins: int) -> None:
    if not v_max > v_min:
        raise ValueError(f"need v_max > v_min, got v_min={v_min}, v_max={v_max}")
    if num_bins < 2:
        raise ValueError(f"need num_bins >= 2, got {num_bins}")
