"""The installed distribution: console script, help texts, package layout, config."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from qtransformer.commands import cli
from qtransformer.training.config import TrainConfig


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "qtransformer", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_top_level_help_lists_every_subcommand(tmp_path):
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in cli.COMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_subcommand_help(name):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([name, "--help"])
    assert exit_info.value.code == 0


def test_help_does_not_import_tensorflow(tmp_path):
    code = (
        "import sys\nfrom qtransformer.commands import cli\ncli.build_parser()\n"
        "heavy = [m for m in ('tensorflow', 'mujoco', 'dm_control', 'tf_agents', 'rlds') "
        "if m in sys.modules]\nprint(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_packages_import_from_any_directory_and_no_top_level_shadowing(tmp_path):
    # From a foreign directory: our subpackages import, and `datasets`, `eval`, `sim_envs`
    # are either absent or someone else's (e.g. Hugging Face datasets), never our folders.
    code = (
        "import importlib.util, json, qtransformer.sim_envs, qtransformer.datasets, "
        "qtransformer.eval\n"
        "specs = {n: importlib.util.find_spec(n) for n in ('datasets', 'eval', 'sim_envs')}\n"
        "print(json.dumps({n: s.origin if s else None for n, s in specs.items()}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert result.returncode == 0, result.stderr
    repo = str(Path(__file__).resolve().parents[1])
    for name, origin in json.loads(result.stdout).items():
        assert origin is None or not origin.startswith(repo), (name, origin)


def test_unknown_subcommand_exits_nonzero(tmp_path):
    result = run_cli("fly", cwd=tmp_path)
    assert result.returncode != 0
    assert "invalid choice" in result.stderr


def test_config_file_and_overrides(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"loss": "mse", "model": {"embed_dim": 32}, "data": {"n_step": 5}}))
    config = TrainConfig.from_file(path).replace(steps=7, n_step=None, value_bins=11)
    assert (config.loss, config.steps, config.data.n_step) == ("mse", 7, 5)
    assert (config.model.embed_dim, config.model.value_bins) == (32, 11)
    assert TrainConfig.from_dict(json.loads(config.to_json())) == config
    path.write_text(json.dumps({"model": {"width": 3}}))
    with pytest.raises(ValueError, match="unknown config keys at model: \\['width'\\]"):
        TrainConfig.from_file(path)
    with pytest.raises(ValueError, match="unknown loss 'l1'"):
        TrainConfig(loss="l1")
