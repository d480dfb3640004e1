"""Observation history: the window of the last W observations the Q network reads.

The Q-Transformer conditions on a window of past observations, Q(s_{t-W+1..t}, a) (RT-1 uses
6 frames), so a demonstrator whose decisions depend on the recent past stays learnable.
`DataConfig.history` (`train --history W`) sets W; W = 1 is the single-observation model,
with no window axis anywhere (specs, batches, policy state), exactly as before windows existed.

For W > 1 every numeric observation key (`state` [S], `image` [H, W, 3]) gains a leading
window axis, oldest step first, current step last: state [W, S], image [W, H, W, 3]. The
instruction stays one string (the current step's). At the start of an episode the window is
padded by repeating the episode's first observation: at step t < W - 1 it holds
(o_0, ..., o_0, o_0, o_1, ..., o_t). Training data (`qtransformer.training.data`) and the policy
(`qtransformer.model.policy`, which carries the window as its tf_agents policy state and refills
it at FIRST time steps) build the same windows.

    episode_windows(x [T+1, ...], W)       -> [T+1, W, ...]   (training data, per episode)
    advance(window [B, W, ...], x [B, ...], is_first [B])
                                           -> [B, W, ...]     (the policy, one step)
"""

from __future__ import annotations

import tensorflow as tf

# Observation keys that get a window axis; the instruction is a string shared by the window.
NUMERIC_KEYS = ("state", "image")


def window_spec(observation_spec: dict, history: int) -> dict:
    """The network's observation spec: each numeric key's spec with a leading [W] axis.

    history = 1 returns `observation_spec` unchanged (no window axis).
    """
    if history == 1:
        return observation_spec
    return {
        key: tf.TensorSpec([history, *spec.shape], spec.dtype, name=spec.name)
        if key in NUMERIC_KEYS
        else spec
        for key, spec in observation_spec.items()
    }


def state_spec(observation_spec: dict, history: int) -> dict | tuple:
    """The policy state spec: {"window": {state [W, S], image [W, H, W, 3]?}}, or () at W = 1."""
    if history == 1:
        return ()
    window = window_spec(observation_spec, history)
    return {
        "window": {
            key: tf.TensorSpec(window[key].shape, window[key].dtype, name=f"window_{key}")
            for key in NUMERIC_KEYS
            if key in window
        }
    }


def history_of(observation_spec: dict) -> int:
    """W of a network observation spec (1 when `state` has no window axis)."""
    shape = observation_spec["state"].shape
    return int(shape[0]) if shape.rank == 2 else 1


def episode_windows(x: tf.Tensor, history: int) -> tf.Tensor:
    """[T+1, ...] steps of one episode -> [T+1, W, ...]: row t is x at t-W+1..t.

    Indices before the episode's start are clipped to 0: the first observation repeated.
    Example (W = 3, x = [o0, o1, o2, o3]): [[o0 o0 o0], [o0 o0 o1], [o0 o1 o2], [o1 o2 o3]].
    """
    t = tf.range(tf.shape(x)[0])
    offsets = tf.range(1 - history, 1)  # [-(W-1), ..., 0]
    return tf.gather(x, tf.maximum(t[:, None] + offsets[None, :], 0))


def advance(window: tf.Tensor, x: tf.Tensor, is_first: tf.Tensor) -> tf.Tensor:
    """One control step of a batch of windows: [B, W, ...] and x [B, ...] -> [B, W, ...].

    Rows where `is_first` [B] is true start afresh (x repeated W times, as the training data
    pads an episode's start); the others drop their oldest step and append x.
    """
    history = window.shape[1]
    fresh = tf.repeat(x[:, tf.newaxis], history, axis=1)
    shifted = tf.concat([window[:, 1:], x[:, tf.newaxis]], axis=1)
    first = tf.reshape(tf.cast(is_first, tf.bool), [-1] + [1] * (window.shape.rank - 1))
    return tf.where(first, fresh, shifted)
