"""`train --strategy multi_worker`: 2 real worker processes on 127.0.0.1 (TF_CONFIG).

Checks what a user of tf.distribute relies on: both workers exit 0; only the chief writes
in --workdir; the workers read disjoint halves of the episodes; after a kill -9 of the chief,
restarting both resumes every worker from the chief's last checkpoint. Plus the one-line
TF_CONFIG errors (malformed, and an unreachable worker within the time-out: exit 2).
"""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_train import TINY, toy_dataset

from qtransformer.training.cluster import (
    free_ports,
    launch_local_workers,
    local_tf_configs,
    parse_tf_config,
    rendezvous,
)

ENV = {
    "CUDA_VISIBLE_DEVICES": "",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "QTRANSFORMER_CLUSTER_TIMEOUT": "90",
    # oneDNN's graph rewrites cost each worker ~2 s CPU of tracing (measured: the first
    # Learner.run 7.3 -> 5.9 s); the cluster logic tested here does not depend on them.
    "TF_ENABLE_ONEDNN_OPTS": "0",
}


def _train_argv(dataset, work, config_path, steps):
    return [
        "train", "--dataset", str(dataset), "--workdir", str(work), "--config", str(config_path),
        "--strategy", "multi_worker", "--steps", str(steps), "--no-progress",
    ]  # fmt: skip


def _finish(procs, logs, timeout=600):
    try:
        codes = [p.wait(timeout=timeout) for p in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    text = [(logs / f"worker{i}.log").read_text() for i in range(len(procs))]
    assert codes == [0, 0], "\n".join(t[-3000:] for t in text)
    return text


def _result(log: str) -> dict:
    """step / resumed_from / loss from the 'trained to step N: {...}' line."""
    line = [x for x in log.splitlines() if x.startswith("trained to step")][-1]
    return {
        k: float(re.search(rf"'{k}': ([-0-9.e]+)", line).group(1))
        for k in ("step", "resumed_from", "loss")
    }


def _latest_step(work: Path) -> int:
    state = work / "train" / "checkpoints" / "checkpoint"
    if not state.exists():
        return 0
    found = re.search(r'^model_checkpoint_path: ".*ckpt-(\d+)"', state.read_text(), re.M)
    return int(found.group(1))


# The kill/resume test costs 4 worker processes of ~13-16 s CPU each, nearly all fixed: TF
# and tf_agents imports ~4 s, tracing the train step and its first collective step ~6 s,
# set-up ~3 s, the final policy export ~2 s. Kept small: 1-d actions (one decoder step to
# trace), one checkpoint and one export per run, no more steps than that checkpoint needs.
EVERY = 5  # steps per checkpoint; TINY's summary_every, so every chunk has the same length


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return toy_dataset(tmp_path_factory.mktemp("data") / "toy", episodes=8, action_dim=1)


def test_two_workers_kill_chief_resume_write_once_disjoint_shards(tmp_path, dataset):
    config_path = tmp_path / "config.json"
    config_path.write_text(TINY.replace(checkpoint_every=EVERY).to_json())
    work, scratch = tmp_path / "run", tmp_path / "scratch"
    scratch.mkdir()
    env = {**ENV, "QTRANSFORMER_EPISODE_LOG": str(tmp_path / "episodes"), "TMPDIR": str(scratch)}

    # Run 1: kill -9 of the chief once a checkpoint is written; then the other worker.
    procs = launch_local_workers(_train_argv(dataset, work, config_path, 10_000), 2, env,
                                 tmp_path / "a")  # fmt: skip
    try:
        deadline = time.time() + 600
        while _latest_step(work) < EVERY and time.time() < deadline:
            assert procs[0].poll() is None, (tmp_path / "a" / "worker0.log").read_text()[-3000:]
            time.sleep(0.05)  # kill soon after the checkpoint, before the export's CPU
    finally:
        for proc in procs:
            proc.kill()  # SIGKILL, the chief first
            proc.wait()
    last = _latest_step(work)
    assert last >= EVERY
    assert [p.name for p in scratch.iterdir() if p.name.startswith("qtransformer-worker1-")]

    # Run 2: restart both. Every worker resumes from the chief's last checkpoint (worker 1 has
    # none of its own: it takes the chief's values), trains EVERY global steps, exits 0.
    procs = launch_local_workers(_train_argv(dataset, work, config_path, last + EVERY), 2, env,
                                 tmp_path / "b")  # fmt: skip
    logs = _finish(procs, tmp_path / "b")
    chief, other = _result(logs[0]), _result(logs[1])
    assert chief["resumed_from"] == other["resumed_from"] == last
    assert chief["step"] == other["step"] == last + EVERY  # global steps, counted once
    assert chief["loss"] == pytest.approx(other["loss"])  # the same all-reduced loss
    assert _latest_step(work) == last + EVERY

    # One writer: one TensorBoard file per chief run, no staging left, the other worker's
    # temporary folder is gone (also the one its killed first run left behind).
    assert {"config.json", "eval", "policies", "policy", "train"} <= set(os.listdir(work))
    assert not [name for name in os.listdir(work) if name.startswith(".")]
    assert len(list((work / "train").glob("events.out.tfevents*"))) == 2
    assert str(last + EVERY) in os.listdir(work / "policies")
    assert [p.name for p in scratch.iterdir() if p.name.startswith("qtransformer-")] == []

    # Disjoint shards: worker i read episodes i, i+2, ... (each recorded by its pipeline).
    shards = [
        {int(x) for x in (tmp_path / "episodes" / f"shard-{i}-of-2.txt").read_text().split()}
        for i in range(2)
    ]
    assert shards[0] == {0, 2, 4, 6} and shards[1] == {1, 3, 5, 7}


def test_malformed_tf_config_is_one_line_naming_it():
    with pytest.raises(ValueError, match="^TF_CONFIG is not valid JSON"):
        parse_tf_config("{cluster: 1}")
    with pytest.raises(ValueError, match="^TF_CONFIG needs"):
        parse_tf_config('{"task": {"type": "worker", "index": 0}}')
    with pytest.raises(ValueError, match="^TF_CONFIG task.index 2 is out of range"):
        parse_tf_config('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", '
                        '"index": 2}}')  # fmt: skip
    with pytest.raises(ValueError, match="^TF_CONFIG cluster.worker address 'a' is not host:port"):
        parse_tf_config('{"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}')
    assert parse_tf_config(None) is None
    config = json.loads(local_tf_configs(2, [1234, 1235])[1])
    assert parse_tf_config(json.dumps(config))["task"] == {"type": "worker", "index": 1}


def test_heartbeat_timeout_from_env(monkeypatch):
    from qtransformer.training.cluster import DEFAULT_HEARTBEAT_S, ENV_HEARTBEAT, heartbeat_timeout

    monkeypatch.delenv(ENV_HEARTBEAT, raising=False)
    assert heartbeat_timeout() == DEFAULT_HEARTBEAT_S
    monkeypatch.setenv(ENV_HEARTBEAT, "2.5")
    assert heartbeat_timeout() == 2.5
    for bad in ("0", "-1", "ten"):
        monkeypatch.setenv(ENV_HEARTBEAT, bad)
        with pytest.raises(ValueError, match=f"^{ENV_HEARTBEAT} must be a positive number"):
            heartbeat_timeout()


def _cli(args, env):
    return subprocess.run(
        [sys.executable, "-m", "qtransformer", *args], capture_output=True, text=True,
        timeout=120, env={**os.environ, **ENV, **env},
    )  # fmt: skip


def test_cli_refuses_malformed_tf_config(tmp_path):
    args = ["train", "--dataset", str(tmp_path), "--workdir", str(tmp_path / "w"),
            "--strategy", "multi_worker"]  # fmt: skip
    bad = _cli(args, {"TF_CONFIG": '{"cluster": '})
    assert bad.returncode == 2
    errors = [line for line in bad.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "TF_CONFIG is not valid JSON" in errors[0], bad.stderr[-2000:]
    assert not (tmp_path / "w").exists()


def test_unreachable_worker_times_out_with_one_line(tmp_path):
    """Worker 0 of a 2-worker cluster whose worker 1 never starts: one line, exit 2, no hang."""
    args = ["train", "--dataset", str(tmp_path), "--workdir", str(tmp_path / "w"),
            "--strategy", "multi_worker"]  # fmt: skip
    config = local_tf_configs(2)[0]
    own, peer = json.loads(config)["cluster"]["worker"]
    start = time.time()
    result = _cli(args, {"TF_CONFIG": config, "QTRANSFORMER_CLUSTER_TIMEOUT": "3"})
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [x for x in result.stderr.splitlines() if "error" in x]
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("qtransformer train: error: TF_CONFIG: worker(s) " + peer)
    assert "within 3 s" in lines[0] and f"worker 0 at {own}" in lines[0]
    assert time.time() - start < 100
    assert not (tmp_path / "w").exists()


def _config(ports, index):
    return json.loads(local_tf_configs(len(ports), ports)[index])


def test_rendezvous_waits_for_a_late_peer_then_frees_its_port():
    """Pure-Python rendezvous, worker 1 starting 0.5 s late: both return, each then binds its
    port again at once as TF's server does (SO_REUSEADDR, as gRPC sets it); a peer that already
    left the rendezvous is seen through that server."""
    ports = free_ports(2)
    done, errors, servers = threading.Barrier(2, timeout=30), [], []

    def worker(index, delay):
        time.sleep(delay)
        try:
            rendezvous(_config(ports, index), timeout_s=20, poll_s=0.05)
            server = socket.socket()
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("", ports[index]))
            server.listen()
            servers.append(server)
            done.wait()  # the "TF server" stays up until both workers are through
        except (OSError, ValueError, threading.BrokenBarrierError) as e:
            errors.append(e)
            done.abort()

    threads = [threading.Thread(target=worker, args=(i, 0.5 * i)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(40)
    for server in servers:
        server.close()
    assert errors == [] and len(servers) == 2 and not any(t.is_alive() for t in threads)


def test_rendezvous_times_out_naming_the_missing_peer_and_a_busy_port():
    ports = free_ports(3)
    start = time.time()
    with pytest.raises(ValueError, match=rf"^TF_CONFIG: worker\(s\) 127.0.0.1:{ports[2]} not "
                                         r"reachable within 0.5 s \(this is worker 0"):  # fmt: skip
        with socket.create_server(("127.0.0.1", ports[1])):  # worker 1 is up (listening)
            rendezvous(_config(ports, 0), timeout_s=0.5, poll_s=0.05)
    assert time.time() - start < 10
    with socket.create_server(("", ports[0])), pytest.raises(ValueError, match="cannot listen"):
        rendezvous(_config(ports, 0), timeout_s=0.5)


def test_one_worker_input_is_make_transition_dataset(dataset):
    """distribute_datasets_from_function with 1 pipeline and 1 replica changes nothing."""
    import numpy as np
    import tensorflow as tf

    from qtransformer.training.data import distributed_transition_dataset, make_transition_dataset

    plain, _ = make_transition_dataset(dataset, TINY.data, seed=3)
    dist = distributed_transition_dataset(tf.distribute.get_strategy(), dataset, TINY.data, seed=3)
    pairs = list(zip(plain.take(4), dist, strict=False))  # dist repeats forever
    assert len(pairs) == 4
    for a, (b, extra) in pairs:
        assert extra == ()
        for x, y in zip(tf.nest.flatten(a), tf.nest.flatten(b), strict=True):
            np.testing.assert_array_equal(x.numpy(), y.numpy())
