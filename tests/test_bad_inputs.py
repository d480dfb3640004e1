"""Bad input -> exit code 2 and one line naming the flag, file or key; inputs untouched.

Every new flag gets a row in FLAG_CASES (refused when parsed, no TensorFlow needed);
inputs that need files on disk are in the tests below. All run in-process via cli.main.
"""

import argparse
import json
import os

import numpy as np
import pytest

from qtransformer.commands import cli, flags

FLAG_CASES = [
    # (command line, word the one-line message must contain)
    ("train --batch-size 0", "--batch-size"),
    ("train --steps -5", "--steps"),
    ("train --steps abc", "--steps"),
    ("train --gamma 0", "--gamma"),
    ("train --gamma 1.5", "--gamma"),
    ("train --lr nan", "--lr"),
    ("train --lr 0", "--lr"),
    ("train --action-bins 1", "--action-bins"),
    ("train --value-bins 1", "--value-bins"),
    ("train --alpha -1", "--alpha"),
    ("train --n-step 0", "--n-step"),
    ("train --history 0", "--history"),
    ("train --seed -1", "--seed"),
    ("train --eval-every -1", "--eval-every"),
    ("train --eval-episodes 0", "--eval-episodes"),
    ("train --embed-dim 0", "--embed-dim"),
    ("train --layers 0", "--layers"),
    ("train --heads 0", "--heads"),
    ("train --checkpoint-every 0", "--checkpoint-every"),
    ("train --v-min inf", "--v-min"),
    ("train --image-shift -1", "--image-shift"),
    ("collect --episodes 0", "--episodes"),
    ("collect --demo-fraction 1.5", "--demo-fraction"),
    ("collect --noise -0.1", "--noise"),
    ("collect --workers 0", "--workers"),
    ("collect --image-size 4", "--image-size"),
    ("collect --seed -2", "--seed"),
    ("eval --baseline random --episodes 0", "--episodes"),
    ("eval --baseline random --batch-size 0", "--batch-size"),
    ("eval --baseline random --video-episodes 0", "--video-episodes"),
    ("demo --steps 0", "--steps"),
    ("demo --episodes -1", "--episodes"),
    ("bench --steps 0", "--steps"),
    ("experiment --seeds 0", "--seeds"),
    ("experiment --demo-fraction 2", "--demo-fraction"),
    ("experiment --eval-episodes 0", "--eval-episodes"),
    ("render --task lift --out x.mp4 --size 0", "--size"),
    ("render --task lift --out x.mp4 --fps 0", "--fps"),
    ("render --task lift --out x.mp4 --noise -1", "--noise"),
]
_REQUIRED = {"train": "--dataset d --workdir w", "collect": "--out o", "render": ""}


def run_main(argv, capsys):
    """(exit code, stderr) of `qtransformer ARGV` run in this process."""
    try:
        code = cli.main(argv)
    except SystemExit as e:  # argparse refuses while parsing
        code = e.code
    return code, capsys.readouterr().err


def assert_one_line_error(code, err, word):
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "error:" in lines[0] and word in lines[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize(("line", "word"), FLAG_CASES, ids=[c[0] for c in FLAG_CASES])
def test_bad_flag_value_is_refused_when_parsed(line, word, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    command = line.split()[0]
    argv = line.split() + _REQUIRED.get(command, "").split()
    code, err = run_main(argv, capsys)
    assert_one_line_error(code, err, word)
    assert os.listdir(tmp_path) == []  # refused before anything was written


def _subparsers():
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_numeric_flag_is_range_checked_and_every_flag_has_help(name):
    sub = _subparsers()[name]
    assert flags.unchecked_numeric_flags(sub) == [], "use a qtransformer.commands.flags type"
    for action in sub._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        assert action.help, f"{name} {action.option_strings[0]} has no help text"
        shown = sub.formatter_class(prog=name)._get_help_string(action)
        exclusive = any(action in g._group_actions for g in sub._mutually_exclusive_groups)
        if not (action.required or exclusive or action.nargs == 0):  # nargs 0: a switch
            assert "default" in shown.lower(), f"{name} {action.option_strings[0]}: no default"


# --- inputs on disk -----------------------------------------------------------------------


def _npz_demos(folder, episodes=2):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(episodes):
        np.savez(folder / f"ep{i}.npz", actions=rng.uniform(-1, 1, (4, 2)),
                 rewards=np.r_[0, 0, 0, 1.0], observations=rng.normal(size=(5, 3)))  # fmt: skip
    return sorted(os.listdir(folder))


@pytest.mark.parametrize(
    ("out", "word"),
    [("demos", "is --input"), ("demos/converted", "lies inside"), (".", "contains")],
)
def test_convert_never_writes_into_or_replaces_its_input(out, word, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = _npz_demos(tmp_path / "demos")
    argv = ["convert", "--format", "npz", "--input", "demos", "--out", out, "--overwrite"]
    code, err = run_main(argv, capsys)
    assert_one_line_error(code, err, word)
    assert sorted(os.listdir(tmp_path / "demos")) == before
    assert sorted(os.listdir(tmp_path)) == ["demos"]


def test_convert_library_errors_become_one_line_naming_the_file(tmp_path, capsys):
    not_hdf5 = tmp_path / "demos.hdf5"
    not_hdf5.write_text("this is not HDF5")
    argv = ["convert", "--format", "hdf5", "--input", str(not_hdf5), "--out", str(tmp_path / "o")]
    code, err = run_main(argv, capsys)
    assert_one_line_error(code, err, "demos.hdf5")
    _npz_demos(tmp_path / "npz")
    (tmp_path / "npz" / "ep1.npz").write_bytes(b"PK\x03\x04 cut short")
    argv = [
        "convert",
        "--format",
        "npz",
        "--input",
        str(tmp_path / "npz"),
        "--out",
        str(tmp_path / "o"),
    ]
    code, err = run_main(argv, capsys)
    assert_one_line_error(code, err, "ep1.npz")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("config", "word"),
    [({"steps": 0}, "steps"), ({"data": {"gamma": 2}}, "data.gamma"),
     ({"learning_rate": -1}, "learning_rate"), ({"model": {"embed_dim": 10}}, "--embed-dim")],
)  # fmt: skip
def test_train_config_file_values_are_range_checked(config, word, tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    argv = ["train", "--dataset", "d", "--workdir", str(tmp_path / "w"), "--config", str(path)]
    code, err = run_main(argv, capsys)
    assert_one_line_error(code, err, word)
    assert not (tmp_path / "w").exists()


def test_outputs_inside_inputs_are_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policy").mkdir()
    (tmp_path / "logs").mkdir()
    (tmp_path / "c.json").write_text("{}")
    cases = [
        ("eval --policy policy --report policy/report.json", "--report"),
        ("eval --policy policy --video policy", "--video"),
        ("plot --logdir logs --out logs", "--out"),
        ("plot --logdir logs/a --out .", "--out"),
        ("experiment --config c.json --results c.json", "--results"),
    ]
    for line, word in cases:
        code, err = run_main(line.split(), capsys)
        assert_one_line_error(code, err, word)
    assert sorted(os.listdir(tmp_path)) == ["c.json", "logs", "policy"]
    assert os.listdir(tmp_path / "policy") == [] and os.listdir(tmp_path / "logs") == []


def test_train_refuses_workdir_inside_dataset_and_unreadable_shards(tmp_path, capsys):
    from test_train import toy_dataset

    data = toy_dataset(tmp_path / "toy")
    files = sorted(os.listdir(data))
    argv = ["train", "--dataset", str(data), "--workdir", str(data / "run"), "--steps", "2"]
    code, err = run_main(argv, capsys)
    assert_one_line_error(code, err, "--workdir")
    assert sorted(os.listdir(data)) == files

    shard = next(data.glob("*.tfrecord*"))
    shard.write_bytes(shard.read_bytes()[:-40])  # a copy cut short
    argv = ["train", "--dataset", str(data), "--workdir", str(tmp_path / "w"), "--steps", "2"]
    code, err = run_main(argv, capsys)
    assert_one_line_error(code, err, str(data))


def test_verbose_shows_the_traceback_of_an_expected_error(tmp_path, capsys):
    argv = ["--verbose", "eval", "--policy", str(tmp_path / "missing"), "--episodes", "1"]
    code, err = run_main(argv, capsys)
    assert code == 2 and "Traceback" in err and "does not exist" in err.splitlines()[-1]


def test_overwrite_replaces_only_an_earlier_dataset(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _npz_demos(tmp_path / "demos")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.tex").write_text("months of work")
    for line in (
        "convert --format npz --input demos --out notes --overwrite",
        "collect --episodes 1 --out notes --overwrite",
    ):
        code, err = run_main(line.split(), capsys)
        assert_one_line_error(code, err, "holds no dataset")
    assert os.listdir(tmp_path / "notes") == ["thesis.tex"]
