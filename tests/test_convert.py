"""`qtransformer convert`: npz / hdf5 / rlds round trips, validation errors, --skip-bad, CLI."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from qtransformer.commands.cli import main
from qtransformer.datasets import Episode, read_episodes, read_meta, write_dataset
from qtransformer.datasets.convert import convert


def _arrays(t=5, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "actions": rng.uniform(-1, 1, (t, 3)).astype(np.float32),
        "rewards": np.r_[np.zeros(t - 1), 1.0].astype(np.float32),
        "observations": rng.normal(size=(t + 1, 4)).astype(np.float32),
    }


def _npz_folder(tmp_path, episodes):
    folder = tmp_path / "npz"
    folder.mkdir()
    for i, arrays in enumerate(episodes):
        np.savez(folder / f"ep{i}.npz", **arrays)
    return folder


def test_npz_round_trip(tmp_path):
    eps = [_arrays(5, 0), dict(_arrays(3, 1), language_instruction="lift it")]
    eps[1]["terminals"] = np.array([0, 0, 0], bool)  # truncated despite reward
    folder = _npz_folder(tmp_path, eps)
    report = convert("npz", folder, tmp_path / "out", task="lift", instruction="default")
    assert report["episodes"] == 2 and report["transitions"] == 8
    back = read_episodes(tmp_path / "out")
    np.testing.assert_array_equal(back[0].states, eps[0]["observations"])
    np.testing.assert_array_equal(back[0].actions, eps[0]["actions"])
    np.testing.assert_array_equal(back[1].rewards, eps[1]["rewards"])
    assert [e.terminal for e in back] == [True, False]
    assert [e.instruction for e in back] == ["default", "lift it"]
    assert back[0].source == "npz:ep0.npz" and back[0].task == "lift"
    meta = read_meta(tmp_path / "out")
    assert meta.action_low.tolist() == [-1, -1, -1] and meta.state_dim == 4
    assert meta.instructions == ["default", "lift it"]


def test_npz_obs_keys_with_t_rows_repeat_last(tmp_path):
    a = _arrays(4)
    arrays = {
        "actions": a["actions"],
        "rewards": a["rewards"],
        "obs/b": np.ones((4, 2), np.float32),
        "obs/a": np.arange(4.0)[:, None],
    }
    convert("npz", _npz_folder(tmp_path, [arrays]), tmp_path / "out")
    (ep,) = read_episodes(tmp_path / "out")
    # sorted keys: a (1 column) then b (2 columns); o_T repeats o_{T-1}
    assert ep.states.shape == (5, 3)
    np.testing.assert_array_equal(ep.states[:, 0], [0, 1, 2, 3, 3])


def test_hdf5_robomimic_round_trip_with_state_keys(tmp_path):
    path = tmp_path / "demo.hdf5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        for k, t in ((1, 4), (0, 3), (10, 2)):
            g = f.create_group(f"data/demo_{k}")
            g["actions"] = rng.uniform(-1, 1, (t, 2))
            g["rewards"] = np.r_[np.zeros(t - 1), 1.0]
            g["dones"] = np.r_[np.zeros(t - 1), 1]
            g["obs/eef"] = np.full((t, 3), k, np.float32)
            g["obs/gripper"] = np.full((t, 1), -k, np.float32)
            g["obs/cam_image"] = np.zeros((t, 8, 8, 3), np.uint8)
            g["next_obs/eef"] = np.full((t, 3), k + 0.5, np.float32)
            g["next_obs/gripper"] = np.full((t, 1), -k, np.float32)
    before = path.read_bytes()
    convert("hdf5", path, tmp_path / "out", state_keys=["gripper", "eef"], instruction="go")
    assert path.read_bytes() == before  # input untouched
    back = read_episodes(tmp_path / "out")
    assert [e.length for e in back] == [3, 4, 2]  # demo_0, demo_1, demo_10 (numeric order)
    np.testing.assert_array_equal(back[1].states[0], [-1, 1, 1, 1])  # gripper first, then eef
    np.testing.assert_array_equal(back[1].states[-1], [-1, 1.5, 1.5, 1.5])  # o_T from next_obs
    assert all(e.terminal for e in back) and back[0].instruction == "go"


def test_rlds_with_map_round_trip(tmp_path):
    # A foreign RLDS dataset: write ours, then rename keys by re-encoding with tfds features.
    import tensorflow_datasets as tfds

    src = tmp_path / "foreign"
    src.mkdir()
    ep = Episode(
        states=np.arange(8.0).reshape(4, 2),
        actions=np.zeros((3, 2)),
        rewards=[0, 0, 1],
        terminal=True,
        instruction="stack",
        task="stack",
        source="x",
    )
    info = tfds.rlds.rlds_base.build_info(
        tfds.rlds.rlds_base.DatasetConfig(
            name="foreign",
            observation_info=tfds.features.FeaturesDict(
                {
                    "robot_state": tfds.features.Tensor(shape=(2,), dtype=np.float32),
                    "natural_language_instruction": tfds.features.Text(),
                }
            ),
            action_info=tfds.features.Tensor(shape=(2,), dtype=np.float32),
            reward_info=tfds.features.Scalar(dtype=np.float32),
            discount_info=tfds.features.Scalar(dtype=np.float32),
        ),
        tfds.core.dataset_info.DatasetIdentity(
            name="foreign", version=tfds.core.Version("1.0.0"), data_dir=str(src), module_name=""
        ),
    )
    writer = tfds.core.SequentialWriter(info, 10)
    writer.initialize_splits(["train"])
    steps = ep.to_steps()["steps"]
    steps["observation"] = {
        "robot_state": steps["observation"]["state"],
        "natural_language_instruction": steps.pop("language_instruction"),
    }
    writer.add_examples({"train": [{"steps": steps}]})
    writer.close_all()
    mapping = {
        "observation/state": "observation/robot_state",
        "language_instruction": "observation/natural_language_instruction",
    }
    convert("rlds", src, tmp_path / "out", mapping=mapping, task="stack")
    (back,) = read_episodes(tmp_path / "out")
    np.testing.assert_array_equal(back.states, ep.states)
    assert back.instruction == "stack" and back.terminal and back.source == "rlds:foreign"
    # without the map, the missing key is named
    with pytest.raises(ValueError, match="key 'observation/state': missing"):
        convert("rlds", src, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


def _two_first_rlds(tmp_path):
    ep = Episode(
        states=np.zeros((4, 2)),
        actions=np.zeros((3, 2)),
        rewards=[0, 0, 0],
        terminal=False,
        instruction="i",
        task="t",
        source="s",
    )
    steps = ep.to_steps()
    steps["steps"]["is_first"][2] = True
    src = tmp_path / "twofirst"
    from qtransformer.datasets.rlds_io import DatasetWriter

    with DatasetWriter(src, state_dim=2, action_low=[-1, -1], action_high=[1, 1]) as w:
        w._pending.append(steps)  # bypass Episode to write a malformed episode
        w.num_episodes = 1
    return src


@pytest.mark.parametrize(
    "case, match",
    [
        ("length", r"ep0.npz: episode 0: key 'rewards': length 4 != 5"),
        ("nan", r"ep0.npz: episode 0: key 'observations': non-finite value nan at index \[3, 1\]"),
        ("bounds", r"ep0.npz: episode 0: key 'actions': value 3 at step 2, dim 1 is outside"),
        ("missing", r"ep0.npz: episode 0: key 'actions': missing"),
    ],
)
def test_bad_npz_names_file_episode_key_and_writes_nothing(tmp_path, case, match):
    a = _arrays(5)
    if case == "length":
        a["rewards"] = a["rewards"][:4]
    elif case == "nan":
        a["observations"][3, 1] = np.nan
    elif case == "bounds":
        a["actions"][2, 1] = 3.0
    else:
        del a["actions"]
    folder = _npz_folder(tmp_path, [a, _arrays(4)])
    with pytest.raises(ValueError, match=match):
        convert("npz", folder, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no temp dir left


def test_two_is_first_is_rejected(tmp_path):
    src = _two_first_rlds(tmp_path)
    with pytest.raises(ValueError, match=r"episode 0: key 'is_first': .*found at steps \[0, 2\]"):
        convert("rlds", src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_clip_and_skip_bad(tmp_path):
    bad = _arrays(5)
    bad["actions"][0, 0] = 2.0
    nan = _arrays(4)
    nan["rewards"][1] = np.inf
    folder = _npz_folder(tmp_path, [bad, _arrays(3), nan])
    report = convert("npz", folder, tmp_path / "out", skip_bad=True)
    assert report["episodes"] == 1 and len(report["skipped"]) == 2
    assert "ep0.npz" in report["skipped"][0] and "ep2.npz" in report["skipped"][1]
    convert("npz", folder, tmp_path / "clip", clip_actions=True, skip_bad=True)
    assert read_episodes(tmp_path / "clip")[0].actions[0, 0] == 1.0


def test_cli_exit_codes_and_overwrite(tmp_path, capsys):
    bad = _arrays(5)
    bad["actions"][0, 0] = 2.0
    folder = _npz_folder(tmp_path, [bad])
    out = str(tmp_path / "out")
    assert main(["convert", "--format", "npz", "--input", str(folder), "--out", out]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "ep0.npz: episode 0: key 'actions'" in err
    args = [
        "convert",
        "--format",
        "npz",
        "--input",
        str(folder),
        "--out",
        out,
        "--clip-actions",
        "--action-low=-1,-1,-1",
        "--action-high",
        "1",
    ]
    assert main(args) == 0
    assert main(args) == 2 and "not empty" in capsys.readouterr().err  # refuses to overwrite
    assert main([*args, "--overwrite"]) == 0
    assert (
        main(
            [
                "convert",
                "--format",
                "npz",
                "--input",
                str(tmp_path / "nope"),
                "--out",
                str(tmp_path / "o2"),
            ]
        )
        == 2
    )


def test_writer_is_atomic_and_shards(tmp_path):
    eps = [
        Episode(
            states=np.zeros((3, 2)),
            actions=np.zeros((2, 1)),
            rewards=[0, 0],
            terminal=False,
            instruction="i",
            task="t",
            source="s",
        )
        for _ in range(5)
    ]

    def crashing():
        yield from eps[:3]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_dataset(tmp_path / "ds", crashing(), action_low=[-1], action_high=[1])
    assert list(tmp_path.iterdir()) == []
    write_dataset(tmp_path / "ds", eps, action_low=[-1], action_high=[1], episodes_per_shard=2)
    assert len(list((tmp_path / "ds").glob("*.tfrecord*"))) == 3
    assert read_meta(tmp_path / "ds").num_episodes == 5
    with pytest.raises(FileNotFoundError, match="not a TFDS dataset"):
        read_meta(tmp_path)
