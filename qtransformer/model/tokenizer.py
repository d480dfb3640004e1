"""Action tokenizer: continuous action vectors <-> one bin index per dimension.

The discretisation rule (pinned in tests/test_tokenizer.py): `num_bins` bins
whose *centres* are evenly spaced from `low` to `high` inclusive, so the bounds
themselves (a closed gripper, -1; an open one, +1) are exactly representable.
Tokenising ROUNDS to the nearest centre (ties round half to even, as tf.round):

    bin = round((clip(a, low, high) - low) / (high - low) * (num_bins - 1))
    a'  = low + bin * (high - low) / (num_bins - 1)

so |a - a'| <= (high - low) / (2 (num_bins - 1)) inside the bounds.
Example with low=-1, high=1, num_bins=3: -1 -> 0, -0.4 -> 1, 0.6 -> 2, 0 -> 1.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


class ActionTokenizer:
    """Maps float32 actions [..., D] to int32 bins [..., D] and back."""

    def __init__(self, low, high, num_bins: int):
        low = np.asarray(low, np.float32).reshape(-1)
        high = np.asarray(high, np.float32).reshape(-1)
        if low.shape != high.shape:
            raise ValueError(f"action low {low.shape} and high {high.shape} differ in shape")
        if num_bins < 2:
            raise ValueError(f"num_bins must be >= 2, got {num_bins}")
        if not np.all(high > low):
            raise ValueError(f"every action dimension needs high > low, got {low} / {high}")
        self.low, self.high, self.num_bins = low, high, int(num_bins)

    @property
    def action_dims(self) -> int:
        return int(self.low.shape[0])

    @classmethod
    def from_spec(cls, spec, num_bins: int) -> ActionTokenizer:
        """From a bounded action spec (tf_agents BoundedTensorSpec or dm_env BoundedArray)."""
        shape = tuple(spec.shape)
        low = np.broadcast_to(np.asarray(spec.minimum, np.float32), shape)
        high = np.broadcast_to(np.asarray(spec.maximum, np.float32), shape)
        return cls(low, high, num_bins)

    def tokenize(self, action) -> tf.Tensor:
        action = tf.convert_to_tensor(action, tf.float32)
        self._check_dims(action)
        unit = (tf.clip_by_value(action, self.low, self.high) - self.low) / (self.high - self.low)
        return tf.cast(tf.round(unit * (self.num_bins - 1)), tf.int32)

    def detokenize(self, bins) -> tf.Tensor:
        bins = tf.clip_by_value(tf.convert_to_tensor(bins, tf.int32), 0, self.num_bins - 1)
        self._check_dims(bins)
        unit = tf.cast(bins, tf.float32) / (self.num_bins - 1)
        return self.low + unit * (self.high - self.low)

    def _check_dims(self, x: tf.Tensor) -> None:
        if x.shape.rank is not None and x.shape[-1] != self.action_dims:
            raise ValueError(
                f"action has {x.shape[-1]} dimensions, the tokenizer expects {self.action_dims}"
            )
