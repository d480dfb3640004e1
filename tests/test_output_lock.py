"""One writer per output; a failed write is one line, no litter.

The code: qtransformer/commands/output_lock.py.
"""

import argparse
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tensorflow as tf
from test_bad_inputs import _npz_demos, assert_one_line_error, run_main
from test_train import TINY, toy_dataset

from qtransformer.commands import output_lock
from qtransformer.datasets.rlds_io import DatasetWriter
from qtransformer.training.train import train

HOLD = "import sys, time; from qtransformer.commands import output_lock as o; \
o.acquire(sys.argv[1], beside=sys.argv[2] == '1'); print('held', flush=True); time.sleep(600)"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return toy_dataset(tmp_path_factory.mktemp("data") / "toy")


@pytest.fixture
def holder():
    """holder(path, beside=False): another live process holding the lock of `path`."""
    procs = []

    def start(path, beside=False):
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), "1" if beside else "0"],
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert proc.stdout.readline().strip() == "held"
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def _record(path, **fields):
    path.mkdir(parents=True, exist_ok=True)
    mine = {"pid": os.getpid(), "host": socket.gethostname(), "start_time": "2020-01-01 00:00:00",
            "boot_id": output_lock._boot_id()}  # fmt: skip
    (path / ".lock").write_text(json.dumps(mine | fields))


def test_live_holder_is_refused_by_name_and_this_process_may_lock_again(tmp_path, holder):
    proc = holder(tmp_path / "w")
    with pytest.raises(output_lock.OutputInUse, match=rf"pid {proc.pid} on host .* \(started "):
        output_lock.acquire(tmp_path / "w")
    with output_lock.acquire(tmp_path / "mine") as lock, output_lock.acquire(tmp_path / "mine"):
        assert json.loads(lock.lock_file.read_text())["pid"] == os.getpid()
    assert not (tmp_path / "mine").exists()  # released; the folder it made was empty


def test_stale_lock_is_taken_over_with_a_line_and_another_hosts_lock_is_not(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    for fields, why in (({"pid": gone.pid}, f"process {gone.pid} is gone"),
                        ({"boot_id": "an-earlier-boot"}, "rebooted")):  # fmt: skip
        _record(tmp_path / "w", **fields)
        (tmp_path / "w" / ".policy.0a1b").mkdir()  # a crash's export folder
        lines = []
        with output_lock.acquire(tmp_path / "w", temps=output_lock.WORKDIR_TEMPS, log=lines.append):
            assert "taking over the lock" in lines[0] and why in lines[0], lines
            assert ".policy.0a1b" in lines[1] and not (tmp_path / "w" / ".policy.0a1b").exists()
    _record(tmp_path / "w", host="elsewhere", pid=1)
    with pytest.raises(output_lock.OutputInUse, match=r"host elsewhere.*if that process is gone"):
        output_lock.acquire(tmp_path / "w")


def test_two_concurrent_trains_exactly_one_proceeds_and_a_killed_ones_lock_is_taken_over(
    dataset, tmp_path
):
    config = tmp_path / "tiny.json"
    config.write_text(TINY.to_json())
    work = tmp_path / "run"
    argv = [sys.executable, "-m", "qtransformer", "train", "--dataset", str(dataset), "--workdir",
            str(work), "--config", str(config), "--steps", "1000000", "--no-progress"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's
    procs = [subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    try:
        deadline = time.monotonic() + 240
        while all(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.2)
        refused = next(p for p in procs if p.poll() is not None)
        winner = next(p for p in procs if p is not refused)
        err = refused.stderr.read()
        assert_one_line_error(refused.returncode, err, f"by another writer, pid {winner.pid}")
        assert winner.poll() is None  # the other one trains on
        while not list(work.glob("policies/*")):  # kill it after its first export
            assert winner.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        for p in procs:
            p.send_signal(signal.SIGKILL)
            p.wait()
    assert json.loads((work / ".lock").read_text())["pid"] == winner.pid  # left by kill -9
    lines = []
    result = train(dataset, work, TINY.replace(steps=10), progress=False, log=lines.append)
    assert any(f"process {winner.pid} is gone" in line for line in lines), lines
    assert result["step"] >= 10 and (work / "policy").is_dir() and not (work / ".lock").exists()


def test_disk_full_is_one_line_leaves_no_temp_folder_and_resume_reaches_the_step(
    dataset, tmp_path, capsys, monkeypatch
):
    config = tmp_path / "tiny.json"
    config.write_text(TINY.to_json())
    work = tmp_path / "run"
    argv = ["train", "--dataset", str(dataset), "--workdir", str(work), "--config", str(config),
            "--steps", "20", "--no-progress"]  # fmt: skip
    copytree = shutil.copytree

    def full_disk(src, dst, *args, **kw):  # the export at step 20 fills the disk half-way
        copytree(src, dst, *args, **kw)
        if Path(dst).name.startswith(".20."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))

    monkeypatch.setattr(shutil, "copytree", full_disk)
    code, err = run_main(argv, capsys)
    assert_one_line_error(code, err, f"cannot write {work / 'policies' / '20'}: No space left")
    assert "errno 28, ENOSPC" in err
    assert sorted(p.name for p in work.glob(".*")) == []  # no temp folder, lock released
    assert [p.name for p in (work / "policies").iterdir()] == ["10"]

    monkeypatch.setattr(shutil, "copytree", copytree)
    (work / ".policy.5eed").mkdir()  # what a crash (kill -9) mid-export leaves
    (work / "policies" / ".20.5eed").mkdir()
    code, _ = run_main(argv, capsys)  # the same command again
    assert code == 0
    assert tf.train.latest_checkpoint(str(work / "train" / "checkpoints")).endswith("ckpt-20")
    assert sorted(os.listdir(work / "policies")) == ["10", "20"]
    assert sorted(p.name for p in work.rglob(".*")) == []


def test_dataset_outputs_are_locked_and_a_failed_shard_write_leaves_nothing(
    tmp_path, capsys, monkeypatch, holder
):
    _npz_demos(tmp_path / "demos")
    proc = holder(tmp_path / "out", beside=True)
    argv = ["convert", "--format", "npz", "--input", str(tmp_path / "demos"),
            "--out", str(tmp_path / "out")]  # fmt: skip
    code, err = run_main(argv, capsys)
    assert_one_line_error(code, err, f"pid {proc.pid}")
    code, err = run_main(["collect", "--episodes", "1", "--out", str(tmp_path / "out")], capsys)
    assert_one_line_error(code, err, f"pid {proc.pid}")

    def full_disk(self):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.tmp / "shard"))

    monkeypatch.setattr(DatasetWriter, "_close", full_disk)
    with pytest.raises(output_lock.WriteFailed, match=r"cannot write .*ds: No space left"):
        toy_dataset(tmp_path / "ds")
    assert sorted(os.listdir(tmp_path)) == [".out.lock", "demos"]  # the holder's lock only


def test_an_experiment_run_folder_in_use_is_refused(tmp_path, holder):
    from qtransformer.eval.experiment import _Runner, _tag

    args = argparse.Namespace(steps=2, quick=True, val_episodes=1, task="pick_place")
    runner = _Runner(tmp_path / "data", tmp_path / "out", tmp_path / "cache", TINY, args)
    params = {"learning_rate": 1e-3}
    proc = holder(tmp_path / "out" / "runs" / f"tune_bc_{_tag(params)}_seed100")
    with pytest.raises(output_lock.OutputInUse, match=f"pid {proc.pid}"):
        runner.tune("bc", params)
