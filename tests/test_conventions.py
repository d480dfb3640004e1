"""Dataset conventions end to end: a small dataset written each way -> convert -> the n-step
targets and Monte-Carlo returns that qtransformer/training/data.py computes, against loops here."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import tensorflow_datasets as tfds

from qtransformer.commands.cli import main
from qtransformer.datasets import conventions, read_meta
from qtransformer.datasets.convert import convert
from qtransformer.datasets.rlds_io import load_dataset
from qtransformer.training.data import transitions_from_episodes

N, G = 3, 0.9


def reference(rewards, terminal, n=N, g=G):
    """Per transition t: (n-step reward, discount, MC return), written as plain loops."""
    rewards, t_len, out = list(rewards), len(rewards), []
    for t in range(t_len):
        k = min(n, t_len - t)
        n_reward = sum(g**j * rewards[t + j] for j in range(k))
        ends = terminal and t + k == t_len
        mc = sum(g ** (j - t) * rewards[j] for j in range(t, t_len))
        out.append((n_reward, 0.0 if ends else g**k, mc))
    return np.array(out)


def transitions(path):
    """{episode id (state[0] // 100): [T, 3] (reward, discount, mc_return)} from data.py."""
    episodes, _ = load_dataset(path)
    got = {}
    for tr in tfds.as_numpy(transitions_from_episodes(episodes, N, G)):
        row = (tr["reward"], tr["discount"], tr["mc_return"])
        got.setdefault(int(tr["observation"]["state"][0] // 100), []).append(row)
    return {k: np.array(v) for k, v in got.items()}


def states(ep, t_len):
    return (100.0 * ep + np.arange(t_len + 1, dtype=np.float32))[:, None].repeat(2, 1)


def write_foreign_rlds(folder, episodes):
    """A TFDS RLDS dataset (not ours) from per-step arrays: reward, discount, is_terminal."""
    folder.mkdir()
    info = tfds.rlds.rlds_base.build_info(
        tfds.rlds.rlds_base.DatasetConfig(
            name="foreign",
            observation_info=tfds.features.FeaturesDict(
                {"state": tfds.features.Tensor(shape=(2,), dtype=np.float32)}
            ),
            action_info=tfds.features.Tensor(shape=(1,), dtype=np.float32),
            reward_info=tfds.features.Scalar(dtype=np.float32),
            discount_info=tfds.features.Scalar(dtype=np.float32),
        ),
        tfds.core.dataset_info.DatasetIdentity(
            name="foreign", version=tfds.core.Version("1.0.0"), data_dir=str(folder),
            module_name="",
        ),
    )  # fmt: skip
    writer = tfds.core.SequentialWriter(info, 10)
    writer.initialize_splits(["train"])
    examples = []
    for ep, (reward, discount, terminal) in enumerate(episodes):
        steps = len(reward)
        first, last = np.zeros(steps, bool), np.zeros(steps, bool)
        first[0], last[-1] = True, True
        examples.append(
            {
                "steps": {
                    "observation": {"state": states(ep, steps - 1)},
                    "action": np.zeros((steps, 1), np.float32),
                    "reward": np.asarray(reward, np.float32),
                    "discount": np.asarray(discount, np.float32),
                    "is_first": first,
                    "is_last": last,
                    "is_terminal": last & terminal,
                }
            }
        )
    writer.add_examples({"train": examples})
    writer.close_all()
    return folder


# Two episodes: a success (sparse reward on the last transition, terminal) and a time-out.
SUCCESS = [0, 0, 0, 0, 1.0]
TIMEOUT = [0, 0, 0, 0.0]


def test_sparse_reward_step_aligned(tmp_path):
    src = write_foreign_rlds(
        tmp_path / "rlds",
        [
            (SUCCESS + [0], [1, 1, 1, 1, 0, 0], True),  # T+1 steps: reward 0 on is_last
            (TIMEOUT + [0], [1] * 5, False),
        ],
    )
    report = convert("rlds", src, tmp_path / "out")
    assert report["conventions"]["reward_alignment"] == "step"
    assert report["terminal_episodes"] == 1 and report["timeout_episodes"] == 1
    assert report["value_range"] == [0.0, 1.0]
    got = transitions(tmp_path / "out")
    np.testing.assert_allclose(got[0], reference(SUCCESS, True), rtol=1e-6)
    np.testing.assert_allclose(got[1], reference(TIMEOUT, False), rtol=1e-6)
    # An explicit flag is used as given (here: the envlogger shift moves the reward one
    # transition earlier) and reported as given, not detected.
    report = convert("rlds", src, tmp_path / "next", reward_alignment="next")
    assert report["conventions"]["alignment_reason"] == "given by --reward-alignment"
    np.testing.assert_allclose(
        transitions(tmp_path / "next")[0], reference([0, 0, 0, 1.0, 0], True), rtol=1e-6
    )


def test_envlogger_aligned_reward_on_is_last(tmp_path, capsys):
    # dm_env/envlogger: step t's reward follows a_{t-1}; the is_last step holds the final
    # reward and (termination) discount 0; the time-out keeps discount 1 and no is_terminal.
    src = write_foreign_rlds(
        tmp_path / "rlds",
        [([0] + SUCCESS, [1, 1, 1, 1, 1, 0], True), ([0] + TIMEOUT, [1] * 5, False)],
    )
    code = main(["convert", "--format", "rlds", "--input", str(src), "--out", str(tmp_path / "o")])
    assert code == 0
    out = capsys.readouterr().out
    assert "reward alignment: next (detected: 1 of 2 episodes have a reward on the is_last" in out
    assert "1 terminal, 1 time-out" in out
    got = transitions(tmp_path / "o")
    np.testing.assert_allclose(got[0], reference(SUCCESS, True), rtol=1e-6)
    np.testing.assert_allclose(got[1], reference(TIMEOUT, False), rtol=1e-6)
    # Forcing the RLDS alignment on envlogger data is refused, naming the fix.
    with pytest.raises(ValueError, match="pass --reward-alignment next"):
        convert("rlds", src, tmp_path / "bad", reward_alignment="step")


def test_alignment_detection_refuses_mixed_data():
    with pytest.raises(ValueError, match="pass --reward-alignment step or next"):
        conventions.detect_alignment([np.array([1.0, 0, 0]), np.array([0, 0, 1.0])])
    assert conventions.detect_alignment([np.array([0, 0.5, 0])])[0] == "step"


def _robomimic(tmp_path):
    # robomimic: reward 1 on every step where the task is solved (the last 3), dones = 1 at the
    # end of every demo (demos end on success).
    rewards = [[0, 0, 0, 1, 1, 1.0], [0, 0, 1, 1.0]]
    path = tmp_path / "demo.hdf5"
    with h5py.File(path, "w") as f:
        for i, r in enumerate(rewards):
            g = f.create_group(f"data/demo_{i}")
            g["obs/x"] = states(i, len(r))[:-1, :1]
            g["next_obs/x"] = states(i, len(r))[1:, :1]
            g["actions"] = np.zeros((len(r), 2), np.float32)
            g["rewards"] = np.asarray(r, np.float32)
            g["dones"] = np.r_[np.zeros(len(r) - 1), 1].astype(np.int64)
    return path, rewards


def test_robomimic_multi_step_reward_with_dones(tmp_path):
    path, rewards = _robomimic(tmp_path)
    report = convert("hdf5", path, tmp_path / "keep")
    got = transitions(tmp_path / "keep")
    for i, r in enumerate(rewards):
        np.testing.assert_allclose(got[i], reference(r, True), rtol=1e-6)
    # Returns above 1: the value range stored for train holds them (no silent clipping).
    top = 1 + 0.98 + 0.98**2
    assert report["return_range"] == pytest.approx([1.0, top])  # every G_t >= the last 1
    assert report["value_range"] == pytest.approx([0.0, top])
    assert read_meta(tmp_path / "keep").reward_stats["value_range"] == pytest.approx([0, top])
    # --reward sparse: one 1 at the end of each successful demo; values back in [0, 1].
    report = convert("hdf5", path, tmp_path / "sparse", reward_mode="sparse")
    got = transitions(tmp_path / "sparse")
    for i, r in enumerate(rewards):
        sparse = [0.0] * (len(r) - 1) + [1.0]
        np.testing.assert_allclose(got[i], reference(sparse, True), rtol=1e-6)
    assert report["value_range"] == [0.0, 1.0]


def test_dense_reward_time_outs(tmp_path):
    # Dense shaped reward, every episode cut by a time limit (no terminals).
    folder = tmp_path / "npz"
    folder.mkdir()
    rng = np.random.default_rng(0)
    dense = [rng.uniform(-0.5, 1.0, 7).round(3), rng.uniform(-0.5, 1.0, 5).round(3)]
    for i, r in enumerate(dense):
        np.savez(
            folder / f"ep{i}.npz", actions=np.zeros((len(r), 1)), rewards=r,
            observations=states(i, len(r)), terminals=np.zeros(len(r), bool),
        )  # fmt: skip
    report = convert("npz", folder, tmp_path / "out")
    got = transitions(tmp_path / "out")
    for i, r in enumerate(dense):
        np.testing.assert_allclose(got[i], reference(r, False), rtol=1e-5, atol=1e-6)
    assert report["timeout_episodes"] == 2 and report["truncated_reward"]
    # Time-outs with rewards bootstrap past the recorded returns: r_max / (1 - g).
    r_min, r_max = min(r.min() for r in dense), max(r.max() for r in dense)
    assert report["value_range"] == pytest.approx([r_min / 0.02, r_max / 0.02], rel=1e-5)
    # The same data with --episode-end success (last reward > 0 -> terminal).
    report = convert("npz", folder, tmp_path / "succ", episode_end="success")
    assert report["terminal_episodes"] == sum(r[-1] > 0 for r in dense)


def test_apply_conventions_and_value_range():
    r, terminal, success = conventions.apply_conventions(
        np.array([0, 2.0, 0.5]), False, None, reward_mode="sparse", episode_end="success"
    )
    assert r.tolist() == [0, 0, 1] and terminal and success
    r, terminal, _ = conventions.apply_conventions(
        np.array([0, 0, 0.0]), True, False, episode_end="timeout"
    )
    assert r.tolist() == [0, 0, 0] and not terminal
    # Negative per-step cost ending in a terminal: returns -sum g^j.
    assert conventions.return_range(np.array([-1.0, -1.0, -1.0]), 0.5) == (-1.75, -1.0)
    assert conventions.value_range((-1, 0), (-1.75, -1.0), False, 0.5) == (-1.75, 0.0)
