"""Per-dimension Bellman targets and the conservative regulariser (pure functions).

Shapes: B batch, D action dimensions, A action bins, V value bins. `q_*` are
scalar Q-values (expected values for the classification losses), indexed by
position: q[:, i, a] = Q(s, a_1..a_i, a_{i+1} = a) in 0-based dims, i.e. the
network's output at position i scores the bins of dimension i.

Q-Transformer (Chebotar et al. 2023, eq. 1), 0-based dims i = 0..D-1:

    y_i     = max_a Q_target(s, a_0..a_i, a_{i+1} = a)           for i < D-1
    y_{D-1} = R_n + discount_n * max_a Q_target(s', a_0 = a)       (n-step return)
    y_i    <- max(y_i, G_t)      with the Monte-Carlo lower bound G_t = sum_j g^j r_{t+j}

The MC bound holds for every dimension: the data continues from (s, a_0..a_i)
with the rest of a_t and then the behaviour policy, whose return is G_t, so the
optimal Q of the prefix is at least G_t.
"""

from __future__ import annotations

import tensorflow as tf

from qtransformer.model import losses


def bellman_targets(
    q_target: tf.Tensor, q_target_next_first: tf.Tensor, reward: tf.Tensor, discount: tf.Tensor
) -> tf.Tensor:
    """Scalar targets y [B, D] from the target network's Q-values.

    Args:
      q_target: [B, D, A], target net on (s, data bins); row i+1 gives the max for dim i.
      q_target_next_first: [B, A], target net's first-dimension Q at s' (position 0).
      reward: [B] n-step discounted reward sum R_n.
      discount: [B] bootstrap multiplier (gamma^k, or 0 if the window hit a terminal).
    """
    inner = tf.reduce_max(q_target[:, 1:, :], axis=-1)  # [B, D-1]
    last = reward + discount * tf.reduce_max(q_target_next_first, axis=-1)  # [B]
    return tf.concat([inner, last[:, tf.newaxis]], axis=1)


def mc_lower_bound(targets: tf.Tensor, mc_return: tf.Tensor) -> tf.Tensor:
    """max(y_i, G_t) for every dimension: [B, D] with [B] -> [B, D]."""
    return tf.maximum(targets, tf.cast(mc_return, tf.float32)[:, tf.newaxis])


def c51_target_distribution(
    probs_target: tf.Tensor,
    q_target: tf.Tensor,
    probs_next_first: tf.Tensor,
    q_next_first: tf.Tensor,
    reward: tf.Tensor,
    discount: tf.Tensor,
    v_min: float,
    v_max: float,
) -> tf.Tensor:
    """Distributional (C51) targets [B, D, V].

    Dim i < D-1: the target net's distribution at the greedy bin of dim i+1 (reward 0,
    discount 1, so the projection is the identity). Last dim: the C51 projection of
    R_n + discount_n * Z(s', greedy bin of dim 0). probs_* are probabilities:
    probs_target [B, D, A, V] with q_target [B, D, A]; probs_next_first [B, A, V]
    with q_next_first [B, A].
    """
    greedy = tf.argmax(q_target[:, 1:], axis=-1, output_type=tf.int32)  # [B, D-1]
    inner = tf.gather(probs_target[:, 1:], greedy, batch_dims=2)  # [B, D-1, V]
    greedy_next = tf.argmax(q_next_first, axis=-1, output_type=tf.int32)  # [B]
    next_probs = tf.gather(probs_next_first, greedy_next, batch_dims=1)  # [B, V]
    last = losses.categorical_projection(next_probs, reward, discount, v_min, v_max)
    return tf.concat([inner, last[:, tf.newaxis]], axis=1)


def taken(values: tf.Tensor, bins: tf.Tensor) -> tf.Tensor:
    """values[b, d, bins[b, d], ...]: [B, D, A, ...] -> [B, D, ...]."""
    return tf.gather(values, tf.cast(bins, tf.int32), batch_dims=2)


def unseen_weights(bins: tf.Tensor, num_bins: int, sigma: float = 0.0) -> tf.Tensor:
    """[B, D, A] weight of each bin in the conservative term, 0 at the data's bin.

    sigma = 0: 1 on every other bin. sigma > 0 (in bins): 1 - exp(-(a - a_data)^2 / (2
    sigma^2)), so the data's neighbours, nearly the same action, are pushed down less.
    Example, sigma = 1: offsets 0, 1, 2, 3 -> 0, 0.393, 0.865, 0.989.
    """
    bins = tf.cast(bins, tf.int32)
    if sigma <= 0:
        return 1.0 - tf.one_hot(bins, num_bins, dtype=tf.float32)
    offset = tf.cast(tf.range(num_bins) - bins[..., tf.newaxis], tf.float32)
    return 1.0 - tf.exp(-tf.square(offset) / (2.0 * sigma**2))


def neighbour_weights(bins: tf.Tensor, num_bins: int, sigma: float) -> tf.Tensor:
    """[B, D, A] weight of each bin in the TD term: exp(-(a - a_data)^2 / (2 sigma^2)).

    1 at the data's bin; sigma = 0: the data's bin alone (one-hot). The complement of
    `unseen_weights`: with the same sigma, a bin's TD weight and conservative weight add to 1.
    Example, sigma = 1: offsets 0, 1, 2, 3 -> 1, 0.607, 0.135, 0.011.
    """
    return 1.0 - unseen_weights(bins, num_bins, sigma)


def unseen_average(per_bin: tf.Tensor, bins: tf.Tensor, sigma: float = 0.0) -> tf.Tensor:
    """Mean of per_bin [B, D, A] over the A-1 bins NOT taken in the data, then over B, D.

    This is the conservative regulariser's reduction: sum_a w(a) l(a) / (A - 1), with the
    weights w of `unseen_weights` (sigma = 0: 1 for a != a_data, 0 for the data's bin).
    """
    num_bins = per_bin.shape[-1]
    unseen = tf.cast(unseen_weights(bins, num_bins, sigma), per_bin.dtype)
    return tf.reduce_mean(tf.reduce_sum(per_bin * unseen, axis=-1) / (num_bins - 1))


def cross_entropy_every_bin(logits: tf.Tensor, probs: tf.Tensor) -> tf.Tensor:
    """[B, D, A] cross-entropy of every bin's logits [B, D, A, V] against probs [B, D, V], or
    against one distribution [V] for all.

    Equals `losses.cross_entropy(logits, probs)` (probs broadcast over the bins) for probs that
    sum to 1, without the log-softmax [B, D, A, V]: CE_a = logsumexp_v l_av - sum_v p_v l_av.
    The TD term of `td_sigma` > 0 reduces it with `neighbour_weights`, the conservative term
    with `unseen_cross_entropy`.
    """
    probs = tf.stop_gradient(tf.cast(probs, tf.float32))
    if probs.shape.rank == 1:
        dot = tf.tensordot(logits, probs, 1)
    else:
        dot = tf.einsum("bdav,bdv->bda", logits, probs)
    return tf.reduce_logsumexp(logits, axis=-1) - dot


def unseen_cross_entropy(
    logits: tf.Tensor, bins: tf.Tensor, probs: tf.Tensor, sigma: float = 0.0
) -> tf.Tensor:
    """The classification losses' conservative term: mean over the A-1 bins NOT taken of
    CE(logits[b, d, a], probs), then over B, D. logits [B, D, A, V], bins [B, D], probs [V].

    Equals `unseen_average(losses.cross_entropy(logits, probs), bins)` without building the
    log-softmax [B, D, A, V] (the largest tensors of the step): as sum_v p_v = 1,

        CE_a = logsumexp_v l_av - sum_v p_v l_av,
        mean_{a != a_data} CE_a = (sum_a CE_a - CE_{a_data}) / (A - 1),

    so only a logsumexp and a product with p reduce the full logits. With sigma > 0 each bin's
    CE is weighted by `unseen_weights` instead.
    """
    per_bin = cross_entropy_every_bin(logits, probs)  # [B, D, A]
    if sigma > 0:
        return unseen_average(per_bin, bins, sigma)
    total = tf.reduce_sum(per_bin, axis=-1)  # [B, D]
    return tf.reduce_mean((total - taken(per_bin, bins)) / (per_bin.shape[-1] - 1))
