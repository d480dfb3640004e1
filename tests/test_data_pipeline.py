"""qtransformer.training.data: n-step targets against hand-computed values (n=3, gamma=0.9)."""

from __future__ import annotations

import numpy as np
import pytest

from qtransformer.datasets import Episode, write_dataset
from qtransformer.training.config import DataConfig
from qtransformer.training.data import make_transition_dataset, measure_throughput

CFG = DataConfig(action_bins=3, n_step=3, gamma=0.9, batch_size=4, shuffle_buffer=100)


def _episode(rewards, terminal, instruction):
    t = len(rewards)
    states = np.arange(t + 1, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)  # o_i = i
    actions = np.tile(np.array([[-1.0, 0.0]], np.float32), (t, 1))
    return Episode(
        states=states,
        actions=actions,
        rewards=rewards,
        terminal=terminal,
        instruction=instruction,
        task="t",
        source="test",
    )


@pytest.fixture(scope="module")
def two_episodes(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipe") / "ds"
    # A: 4 transitions, success on the last (terminal). B: 4 transitions, time limit (truncated).
    episodes = [_episode([0, 0, 0, 1], True, "succeed"), _episode([0, 1, 0, 0], False, "truncate")]
    write_dataset(out, episodes, action_low=[-1, -1], action_high=[1, 1])
    return out


def _all_transitions(path):
    ds, meta = make_transition_dataset(path, CFG, repeat=False, shuffle=False, batch_size=1)
    rows = [{k: (v if not isinstance(v, dict) else v) for k, v in b.items()} for b in ds]
    return rows, meta


def test_n_step_targets_match_hand_computation(two_episodes):
    rows, meta = _all_transitions(two_episodes)
    assert len(rows) == 8 and meta.num_episodes == 2
    by_ep = {"succeed": [], "truncate": []}
    for row in rows:
        by_ep[row["observation"]["instruction"].numpy()[0].decode()].append(row)
    for rows_ep in by_ep.values():
        rows_ep.sort(key=lambda r: float(r["observation"]["state"][0, 0]))

    def col(name, ep):
        return np.array([float(r[name].numpy()[0]) for r in by_ep[ep]])

    # Episode A, r = [0, 0, 0, 1], terminal at t=3 (d_3 = 0), T = 4.
    # t=0: k=3, R = 0 + .9*0 + .81*0 = 0, no terminal in t..2 -> discount .9^3 = .729, next o_3
    # t=1: k=3, R = 0 + .9*0 + .81*1 = .81, window reaches t=3 (terminal) -> discount 0, next o_4
    # t=2: k=2, R = 0 + .9*1 = .9, terminal -> 0, next o_4
    # t=3: k=1, R = 1, terminal -> 0, next o_4
    # MC: G_3 = 1, G_2 = .9, G_1 = .81, G_0 = .729
    np.testing.assert_allclose(col("reward", "succeed"), [0, 0.81, 0.9, 1.0], atol=1e-6)
    np.testing.assert_allclose(col("discount", "succeed"), [0.729, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(col("mc_return", "succeed"), [0.729, 0.81, 0.9, 1.0], atol=1e-6)
    assert col("is_terminal", "succeed").tolist() == [0, 1, 1, 1]
    nxt = [float(r["next_observation"]["state"].numpy()[0, 0]) for r in by_ep["succeed"]]
    assert nxt == [3, 4, 4, 4]

    # Episode B, r = [0, 1, 0, 0], truncated (all d = 1), T = 4.
    # t=0: k=3, R = 0 + .9*1 + 0 = .9, discount .729, next o_3
    # t=1: k=3, R = 1 + 0 + 0 = 1, discount .729, next o_4
    # t=2: k=2 (2 steps left), R = 0, discount .9^2 = .81, next o_4
    # t=3: k=1, R = 0, discount .9, next o_4
    # MC: G_3 = 0, G_2 = 0, G_1 = 1, G_0 = .9
    np.testing.assert_allclose(col("reward", "truncate"), [0.9, 1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(col("discount", "truncate"), [0.729, 0.729, 0.81, 0.9], atol=1e-6)
    np.testing.assert_allclose(col("mc_return", "truncate"), [0.9, 1, 0, 0], atol=1e-6)
    assert col("is_terminal", "truncate").tolist() == [0, 0, 0, 0]
    nxt = [float(r["next_observation"]["state"].numpy()[0, 0]) for r in by_ep["truncate"]]
    assert nxt == [3, 4, 4, 4]
    # next instruction is the episode's; action [-1, 0] -> bins [0, 1] with 3 bins on [-1, 1]
    assert by_ep["truncate"][0]["next_observation"]["instruction"].numpy()[0] == b"truncate"
    assert by_ep["succeed"][0]["action_bins"].numpy().tolist() == [[0, 1]]


def test_batches_shapes_dtypes_and_shuffle(two_episodes):
    ds, _ = make_transition_dataset(two_episodes, CFG, seed=1)
    batch = next(iter(ds))
    assert batch["observation"]["state"].shape == (4, 2)
    assert batch["observation"]["instruction"].dtype.name == "string"
    assert batch["action_bins"].dtype.name == "int32" and batch["action_bins"].shape == (4, 2)
    for key in ("reward", "discount", "mc_return", "is_terminal"):
        assert batch[key].shape == (4,)
    # repeat + shuffle: 20 batches cover both episodes in mixed order
    seen = [b["observation"]["instruction"].numpy().tolist() for b in ds.take(20)]
    assert any(len(set(s)) == 2 for s in seen)


def test_measure_throughput_reports_positive_rate(two_episodes):
    result = measure_throughput(two_episodes, CFG, batches=5)
    assert result["transitions_per_s"] > 0 and result["batch_size"] == 4
