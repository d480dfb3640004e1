"""Pinned bucket indices of the action tokenizer (RT-1 style)."""

import numpy as np
import pytest

from qtransformer.model.tokenizer import ActionTokenizer


def test_pinned_buckets_three_bins():
    tok = ActionTokenizer([-1.0, -1.0], [1.0, 1.0], 3)
    # centres -1, 0, 1: -0.4 -> round(0.6 * 2 / 2) ... (a+1)/2*2 = 0.6 -> 1; 0.6 -> 1.6 -> 2.
    bins = tok.tokenize([[-1.0, -0.4], [0.6, 0.0], [0.49, -0.51]]).numpy()
    np.testing.assert_array_equal(bins, [[0, 1], [2, 1], [1, 0]])


def test_pinned_buckets_256_bins():
    tok = ActionTokenizer([-1.0], [1.0], 256)
    # (a + 1) / 2 * 255: 0.0 -> 127.5 -> 128 (half to even), 0.5 -> 191.25 -> 191, 1 -> 255.
    bins = tok.tokenize([[0.0], [0.5], [1.0], [-1.0], [5.0]]).numpy()[:, 0]
    np.testing.assert_array_equal(bins, [128, 191, 255, 0, 255])


def test_round_trip_error_bounded_and_bounds_exact():
    tok = ActionTokenizer([-1.0, 0.0], [1.0, 2.0], 11)
    rng = np.random.default_rng(0)
    actions = rng.uniform([-1, 0], [1, 2], size=(500, 2)).astype(np.float32)
    back = tok.detokenize(tok.tokenize(actions)).numpy()
    half_step = np.array([2.0, 2.0]) / (2 * 10)
    assert np.all(np.abs(back - actions) <= half_step + 1e-6)
    np.testing.assert_allclose(tok.detokenize([[0, 0], [10, 10]]), [[-1, 0], [1, 2]])


def test_from_spec_and_errors():
    from tf_agents.specs import tensor_spec

    spec = tensor_spec.BoundedTensorSpec([4], np.float32, -1.0, 1.0)
    tok = ActionTokenizer.from_spec(spec, 8)
    assert tok.action_dims == 4
    with pytest.raises(ValueError, match="3 dimensions"):
        tok.tokenize(np.zeros([2, 3], np.float32))
    with pytest.raises(ValueError, match="high > low"):
        ActionTokenizer([0.0], [0.0], 4)
