"""CQL-SAC baseline: transitions, Learner checkpoints and resume, export, rollout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from qtransformer.baselines.cql_sac import to_transition, train_cql_sac
from qtransformer.datasets.collect import collect_dataset

STEPS = dict(seed=0, checkpoint_every=3, batch_size=16, progress=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 3-episode pick_place recording and a 6-step CQL-SAC run on it."""
    root = tmp_path_factory.mktemp("cql")
    data = collect_dataset(root / "ds", tasks="pick_place", episodes=3, demo_fraction=1 / 3,
                           noise=0.4, seed=0, progress=False)  # fmt: skip
    train_cql_sac(data, root / "run", steps=6, **STEPS)
    return data, root / "run"


def test_transition_is_one_step_with_terminal_discount_and_standardised_states():
    batch = {
        "observation": {"state": tf.constant([[1.0, 2.0], [3.0, 4.0]])},
        "next_observation": {"state": tf.constant([[5.0, 6.0], [7.0, 8.0]])},
        "action": tf.constant([[0.5], [-1.0]]),
        "reward": tf.constant([0.0, 1.0]),
        "is_terminal": tf.constant([False, True]),
    }
    mean, std = np.float32([1.0, 0.0]), np.float32([2.0, 4.0])
    t = to_transition(batch, mean, std)
    np.testing.assert_allclose(t.time_step.observation, [[0.0, 0.5], [1.0, 1.0]])
    np.testing.assert_allclose(t.next_time_step.observation, [[2.0, 1.5], [3.0, 2.0]])
    np.testing.assert_allclose(t.next_time_step.reward, [0.0, 1.0])
    np.testing.assert_allclose(t.next_time_step.discount, [1.0, 0.0])  # agent applies gamma
    assert t.next_time_step.step_type.numpy().tolist() == [1, 2]  # MID, LAST
    np.testing.assert_allclose(t.action_step.action, [[0.5], [-1.0]])


def test_trains_checkpoints_and_exports_policies(run):
    _, work = run
    assert sorted(os.listdir(work / "policies")) == ["3", "6"]
    assert (work / "policy" / "saved_model.pb").exists()
    assert list((work / "train").glob("events.out.tfevents*"))
    assert tf.train.latest_checkpoint(str(work / "train" / "checkpoints")).endswith("ckpt-6")
    hyper = json.loads((work / "cql_sac.json").read_text())
    assert hyper["cql_alpha"] == 5.0 and hyper["learning_rate"] == 3e-4
    stats = json.loads((work / "state_stats.json").read_text())
    assert len(stats["mean"]) == len(stats["std"]) == 16 and min(stats["std"]) >= np.float32(0.01)


LOAD_SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf
from tf_agents.trajectories import time_step as ts
policy = tf.saved_model.load(sys.argv[1])
state = np.random.default_rng(0).normal(size=(6, 16)).astype(np.float32)
state[3:] *= 100.0  # far outside the data: the squashed head must still stay in bounds
def act(instruction):
    obs = {"state": tf.constant(state), "instruction": tf.constant([instruction] * 6)}
    step = ts.TimeStep(tf.ones([6], tf.int32), tf.zeros([6]), tf.ones([6]), obs)
    return policy.action(step).action.numpy()
a, b = act("pick up the red block"), act("anything else")
print(json.dumps({"a": a.tolist(), "b": b.tolist(), "again": act("x").tolist(),
                  "modules": sorted(m for m in sys.modules if m.startswith("qtransformer"))}))
"""


def test_exported_policy_loads_alone_is_greedy_and_in_bounds(run):
    _, work = run
    result = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, str(work / "policy")],
        capture_output=True, text=True, timeout=300, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    a = np.array(out["a"])
    assert out["modules"] == []  # no class of ours was needed to load and run it
    assert a.shape == (6, 4) and np.all(np.abs(a) <= 1.0)
    np.testing.assert_array_equal(a, out["b"])  # the instruction is ignored
    np.testing.assert_array_equal(a, out["again"])  # greedy: deterministic
    assert np.ptp(a, axis=0).max() > 0  # and not a constant


def test_rollout_code_evaluates_the_export(run):
    from qtransformer.eval.rollout import evaluate

    _, work = run
    report = evaluate(work / "policies" / "6", "pick_place", 2, seed=1, progress=False)
    assert report["episodes"] == 2 and 0.0 <= report["success_rate"] <= 1.0


def test_rerun_resumes_from_checkpoint(run, tmp_path):
    data, work = run
    work = shutil.copytree(work, tmp_path / "run")
    saved = [v.numpy() for v in tf.saved_model.load(str(work / "policies" / "6")).model_variables]
    shutil.rmtree(work / "policy")
    train_cql_sac(data, work, steps=6, **STEPS)  # finished: restores and re-exports, no step
    restored = [v.numpy() for v in tf.saved_model.load(str(work / "policy")).model_variables]
    assert len(saved) == len(restored) >= 8
    for before, after in zip(saved, restored, strict=True):
        np.testing.assert_array_equal(after, before)
    train_cql_sac(data, work, steps=9, **STEPS)
    assert sorted(os.listdir(work / "policies")) == ["3", "6", "9"]
    ckpt = tf.train.latest_checkpoint(str(work / "train" / "checkpoints"))
    assert ckpt.endswith("ckpt-9")
    iterations = "agent/_critic_optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE"
    assert tf.train.load_variable(ckpt, iterations) == 9  # Adam's state carried on from 6
