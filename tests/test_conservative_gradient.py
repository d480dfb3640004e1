"""The conservative term's per-bin gradients against hand-worked closed forms (issue 22).

docs/conservative_weight.md rests on these: through the sigmoid, mse's 1/2 Q^2 on an unseen
bin has d/dz = Q^2 (1 - Q); the classification losses' cross-entropy toward the v_min
distribution p has d/dz = softmax(z) - p. Both are checked on the code's own loss functions
and reductions (the agent's Q of mse, `targets.unseen_average`, `targets.unseen_cross_entropy`),
with A = 2 action bins so the mean over unseen bins is the one unseen bin.
"""

import importlib.util
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

from qtransformer.model import losses, targets
from qtransformer.model.agent import QTransformerAgent
from qtransformer.training.config import ModelConfig, TrainConfig

LO, HI = ModelConfig().value_support()  # [-3/26, 29/26], 32 bins of width 1/26
V = ModelConfig().value_bins


def mse_q(outputs):
    """The agent's own Q for the mse loss: v_min + (v_max - v_min) sigmoid(output)."""
    return QTransformerAgent.q_values(SimpleNamespace(_config=TrainConfig(loss="mse")), outputs)


def p_min(loss):
    return losses.target_probs(loss, tf.constant(0.0), LO, HI, V).numpy()


@pytest.mark.parametrize(
    "q, hand",  # Q^2 (1 - Q) worked by hand
    [(0.5, 0.125), (0.1, 0.009), (0.03, 0.000873), (0.01, 0.000099)],
)
def test_mse_unseen_bin_gradient_is_q_squared_times_one_minus_q(q, hand):
    z = math.log(q / (1 - q))  # sigmoid(z) = q
    outputs = tf.Variable([[[0.0, z]]])  # [B=1, D=1, A=2]; bin 0 is the data's
    bins = tf.constant([[0]])
    with tf.GradientTape() as tape:
        cons = targets.unseen_average(losses.mse(mse_q(outputs), 0.0), bins)
    grad = tape.gradient(cons, outputs).numpy()[0, 0]
    assert grad[0] == 0.0
    assert grad[1] == pytest.approx(hand, rel=1e-4)
    assert grad[1] == pytest.approx(q * q * (1 - q), rel=1e-5)


@pytest.mark.parametrize("loss", ["hl_gauss", "two_hot"])
def test_ce_unseen_bin_gradient_is_softmax_minus_target(loss):
    logits = tf.Variable(np.random.default_rng(0).normal(size=(1, 1, 2, V)).astype(np.float32))
    bins = tf.constant([[0]])
    target = p_min(loss)
    with tf.GradientTape(persistent=True) as tape:
        fast = targets.unseen_cross_entropy(logits, bins, target)  # the agent's path
        plain = targets.unseen_average(losses.cross_entropy(logits, target), bins)
    for term in (fast, plain):
        grad = tape.gradient(term, logits).numpy()[0, 0]
        np.testing.assert_allclose(grad[0], 0.0, atol=1e-7)
        softmax = np.exp(logits.numpy()[0, 0, 1]) / np.exp(logits.numpy()[0, 0, 1]).sum()
        np.testing.assert_allclose(grad[1], softmax - target, atol=1e-6)


def test_v_min_targets_and_gradient_norms_by_hand():
    hl, two = p_min("hl_gauss"), p_min("two_hot")
    # v_min = 0 is the edge between bins 2 and 3: HL-Gauss (sigma = 0.75 w) is symmetric there.
    np.testing.assert_allclose(hl[:6], [0.0038, 0.0874, 0.4088, 0.4088, 0.0874, 0.0038], atol=1e-4)
    np.testing.assert_allclose(two[:4], [0, 0, 0.5, 0.5], atol=1e-6)
    uniform = np.full(V, 1 / V)
    # |u - p|^2 = sum p^2 - 2/V + 1/V: 2 (.0038^2 + .0874^2 + .4088^2) - 1/32 = 0.3183
    assert np.linalg.norm(uniform - hl) == pytest.approx(math.sqrt(0.3183), abs=2e-4)  # 0.564
    assert np.linalg.norm(uniform - two) == pytest.approx(math.sqrt(0.5 - 1 / 32), abs=1e-5)
    # Predicting the loss's own target distribution of y = 0.03 (mean Q = 0.03):
    for loss, target, hand in (("hl_gauss", hl, 0.379), ("two_hot", two, 0.614)):
        pred = losses.target_probs(loss, tf.constant(0.03), LO, HI, V).numpy()
        assert float(pred @ losses.bin_centers(LO, HI, V).numpy()) == pytest.approx(0.03, abs=1e-5)
        assert np.linalg.norm(pred - target) == pytest.approx(hand, abs=1e-3)
    # Two-hot by hand: centres c_k = (k - 2.5) / 26, so y = 0.03 = 0.78 w lies between c_3 and
    # c_4, 0.28 of the way: 0.72 on bin 3, 0.28 on bin 4; minus (0.5, 0.5) on bins 2, 3 gives
    # (-0.5, 0.22, 0.28) on bins 2..4.
    assert math.sqrt(0.5**2 + 0.22**2 + 0.28**2) == pytest.approx(0.614, abs=1e-3)


def test_script_closed_forms_match_the_code():
    path = Path(__file__).parents[1] / "scripts" / "conservative_gradient.py"
    spec = importlib.util.spec_from_file_location("conservative_gradient", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.mse_bin_gradient(0.03) == pytest.approx(0.000873)
    z = np.random.default_rng(1).normal(size=V)
    target = p_min("hl_gauss")
    logits = tf.Variable(z[np.newaxis], dtype=tf.float32)
    with tf.GradientTape() as tape:
        ce = losses.cross_entropy(logits, target)
    np.testing.assert_allclose(
        tape.gradient(ce, logits).numpy()[0], script.ce_logit_gradient(z, target), atol=1e-6
    )
