"""`qtransformer eval --env`: a tiny Gymnasium env registered here and a dm_env factory."""

from __future__ import annotations

import json
import textwrap
from types import SimpleNamespace

import gymnasium
import numpy as np
import pytest

from qtransformer.commands.cli import main
from qtransformer.eval.external_eval import evaluate_external
from qtransformer.eval.metrics import wilson_interval


class TinyReach(gymnasium.Env):
    """1-D reach: pos moves by 0.25 * action; success (terminated) within 0.1 of goal."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode=None):
        self.render_mode = render_mode
        box = gymnasium.spaces.Box(-2.0, 2.0, (1,), np.float32)
        self.observation_space = gymnasium.spaces.Dict({"pos": box, "goal": box})
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def _obs(self):
        return {"pos": self.pos.copy(), "goal": self.goal.copy()}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = np.zeros(1, np.float32)
        self.goal = self.np_random.uniform(-1, 1, 1).astype(np.float32)
        return self._obs(), {"is_success": False}

    def step(self, action):
        self.pos = self.pos + 0.25 * np.asarray(action, np.float32)
        success = bool(abs(self.pos[0] - self.goal[0]) < 0.1)
        return self._obs(), float(success), success, False, {"is_success": success}

    def render(self):
        return np.full((16, 16, 3), 100, np.uint8)


gymnasium.register("QtTinyReach-v0", entry_point=TinyReach, max_episode_steps=12)


class GreedyReach:
    """A policy object: state = [goal, pos] (sorted keys); moves toward the goal, or away."""

    def __init__(self, sign=1.0):
        self.sign, self.calls = sign, []

    def action(self, time_step):
        state = time_step.observation["state"].numpy()
        self.calls.append(len(state))
        step = np.clip((state[:, :1] - state[:, 1:]) / 0.25, -1, 1)
        return SimpleNamespace(action=(self.sign * step).astype(np.float32))


def test_gymnasium_id_success_from_info_batched(tmp_path):
    policy = GreedyReach()
    report = evaluate_external(
        policy, "gymnasium:QtTinyReach-v0", 10, seed=3, batch_size=4, progress=False,
        video_path=tmp_path / "v.gif", video_episodes=1,
    )  # fmt: skip
    assert report["successes"] == 10 and report["success_ci95"] == list(wilson_interval(10, 10))
    assert max(policy.calls) == 4  # one batched call per step for 4 environments
    assert (tmp_path / "v.gif").stat().st_size > 0
    # Moving away never succeeds; the time limit (12 steps) is a truncation.
    report = evaluate_external(GreedyReach(-1.0), "gymnasium:QtTinyReach-v0", 3, progress=False)
    assert report["successes"] == 0 and report["mean_episode_length"] == 12.0


DM_ENV_MODULE = """
import dm_env
import numpy as np
from dm_env import specs

class Walk(dm_env.Environment):
    # 1-D walk from 0; reward 0.5 per step at x >= 1; terminal (reward 1) at x >= 2.
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
    def reset(self):
        self.x = 0.0
        return dm_env.restart({"x": np.array([self.x]), "noise": self.rng.normal(size=2)})
    def step(self, action):
        self.x += float(action[0])
        obs = {"x": np.array([self.x]), "noise": self.rng.normal(size=2)}
        if self.x >= 2:
            return dm_env.termination(1.0, obs)
        return dm_env.transition(0.5 if self.x >= 1 else 0.0, obs)
    def action_spec(self):
        return specs.BoundedArray((1,), np.float32, -1.0, 1.0)
    def observation_spec(self):
        return {}

def make_env(seed):
    return Walk(seed)
"""


class Forward:
    def action(self, time_step):
        n = time_step.observation["state"].shape[0]
        assert time_step.observation["state"].shape[1] == 1  # --state-keys x only
        return SimpleNamespace(action=np.full((n, 1), 0.5, np.float32))


def test_dm_env_factory_success_rules(tmp_path, monkeypatch):
    (tmp_path / "walkenv.py").write_text(textwrap.dedent(DM_ENV_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    # Our sim's rule: a terminal step with positive reward (x reaches 2 after 4 steps).
    report = evaluate_external(Forward(), "walkenv:make_env", 3, state_keys=["x"], progress=False)
    assert report["successes"] == 3 and report["mean_return"] == pytest.approx(0.5 + 0.5 + 1)
    # --max-steps cuts the episode before the terminal; --success-reward 0.5 still counts it.
    report = evaluate_external(
        Forward(), "walkenv:make_env", 2, state_keys=["x"], max_steps=2, progress=False
    )
    assert report["successes"] == 0 and report["mean_episode_length"] == 2
    report = evaluate_external(
        Forward(), "walkenv:make_env", 2, state_keys=["x"], max_steps=2, success_reward=0.5,
        progress=False,
    )  # fmt: skip
    assert report["successes"] == 2


def test_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    for env, match in (
        ("no_such_module_xyz:make", "cannot import it"),
        ("gymnasium:NoSuchEnv-v9", "--env gymnasium:NoSuchEnv-v9"),
        ("justaname", "expected MODULE:FACTORY or gymnasium:ID"),
    ):
        code = main(["eval", "--baseline", "random", "--env", env, "--episodes", "1"])
        assert code == 2
        assert match in capsys.readouterr().err.strip().splitlines()[-1]


def test_exported_policy_on_gymnasium_cli(tmp_path):
    from qtransformer.datasets import Episode, write_dataset
    from qtransformer.training.config import TrainConfig
    from qtransformer.training.train import train

    rng = np.random.default_rng(0)
    episodes = [
        Episode(
            states=rng.uniform(-1, 1, (5, 2)),
            actions=rng.uniform(-1, 1, (4, 1)),
            rewards=[0, 0, 0, float(i % 2)],
            terminal=bool(i % 2),
            instruction="reach",
            task="tiny",
            source="test",
        )  # fmt: skip
        for i in range(6)
    ]
    data = write_dataset(tmp_path / "data", episodes, action_low=[-1], action_high=[1])
    config = TrainConfig().replace(
        steps=2, batch_size=8, action_bins=5, value_bins=11, embed_dim=16, num_layers=1,
        num_heads=2, head_rank=4, shuffle_buffer=10, checkpoint_every=2,
    )  # fmt: skip
    train(data, tmp_path / "run", config, progress=False)
    report_path = tmp_path / "r.json"
    code = main(
        ["eval", "--policy", str(tmp_path / "run" / "policy"), "--env",
         "gymnasium:QtTinyReach-v0", "--episodes", "3", "--instruction", "reach",
         "--report", str(report_path), "--no-progress"]
    )  # fmt: skip
    assert code == 0
    report = json.loads(report_path.read_text())
    assert report["episodes"] == 3 and report["env"] == "gymnasium:QtTinyReach-v0"
    low, high = report["success_ci95"]
    assert low <= report["success_rate"] <= high
    # A state of another size (one key instead of two) is refused, naming --state-keys.
    with pytest.raises(ValueError, match="state of size 2.*gives 1.*--state-keys"):
        evaluate_external(
            __import__("qtransformer.eval.rollout", fromlist=["x"]).load_policy(
                tmp_path / "run" / "policy"
            ),
            "gymnasium:QtTinyReach-v0", 1, state_keys=["pos"], progress=False,
        )  # fmt: skip


def test_examples_reacher_records_and_evaluates(tmp_path, monkeypatch):
    # The docs/environment.md recipe's pieces on dm_control's reacher: a recorded episode in the
    # npz layout, and the factory evaluated by its --env spec from the repository root.
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)  # --env resolves MODULE from the current directory
    monkeypatch.syspath_prepend(str(root))  # for the import below
    from examples.reacher import record_episode

    arrays = record_episode(seed=1, noise=0.0)
    t = len(arrays["actions"])
    assert arrays["obs/to_target"].shape == (t + 1, 2) and arrays["rewards"].shape == (t,)
    assert arrays["terminals"][-1] == (arrays["rewards"][-1] == 1.0)
    report = evaluate_external(
        "random", "examples.reacher:make_env", 2, max_steps=5, success_reward=1, progress=False
    )
    assert report["episodes"] == 2 and report["mean_episode_length"] == 5
