"""Multi-worker tf.distribute: TF_CONFIG checks, one writer, chief broadcast, local launcher.

The scale-out contract (DESIGN.md, "Scale-out"):
- the strategy is created before any other TF op (`strategy.make_strategy` is the first thing
  `train.run` and `train.train` do); `MultiWorkerMirroredStrategy` cannot start otherwise;
- a malformed `TF_CONFIG`, or a cluster whose workers are not all up within
  `QTRANSFORMER_CLUSTER_TIMEOUT` seconds (default 120), ends the process with one line naming
  TF_CONFIG (exit status 2). The wait is ours, in Python (`rendezvous`): TensorFlow's own wait
  for the peers blocks in C++ holding the GIL, where no time-out of ours could run;
- a last-resort watchdog process guards the strategy's start after the rendezvous (a peer that
  accepted TCP but never joined, e.g. another program on its port): after another time-out it
  prints the line and ends the worker with SIGKILL (exit status 137);
- the coordination service declares a worker dead after `QTRANSFORMER_HEARTBEAT_TIMEOUT`
  seconds without a heartbeat (default 60; TF's 10 s fails healthy workers of a loaded host);
- only the chief (the `chief` task, else worker 0) writes in --workdir; every other worker writes
  the same files into a temporary folder removed at exit (the documented tf.distribute
  pattern: every worker takes part in each save);
- after the chief restored its checkpoint, `sync_from_chief` copies the chief's variables to
  every worker with one all-reduce, so a resumed run needs no shared file system.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV_TIMEOUT = "QTRANSFORMER_CLUSTER_TIMEOUT"
DEFAULT_TIMEOUT_S = 120.0
ENV_HEARTBEAT = "QTRANSFORMER_HEARTBEAT_TIMEOUT"
DEFAULT_HEARTBEAT_S = 60.0  # TF's default, 10 s, ends healthy workers of a busy host


def parse_tf_config(raw: str | None) -> dict | None:
    """The TF_CONFIG dict, checked; None if unset. Raises ValueError (one line) if malformed."""
    if raw is None or not raw.strip():
        return None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON ({e}): {raw[:80]!r}") from e
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not cluster or not isinstance(task, dict):
        raise ValueError(
            'TF_CONFIG needs {"cluster": {"worker": ["host:port", ...]}, '
            f'"task": {{"type": "worker", "index": i}}}}, got {raw[:80]!r}'
        )
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses:
            raise ValueError(f"TF_CONFIG cluster.{job} must be a non-empty list of host:port")
        for address in addresses:
            host, _, port = str(address).rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"TF_CONFIG cluster.{job} address {address!r} is not host:port")
    kind, index = task.get("type"), task.get("index")
    if kind not in cluster:
        raise ValueError(
            f"TF_CONFIG task.type {kind!r} is not a job of the cluster {list(cluster)}"
        )
    if not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise ValueError(
            f"TF_CONFIG task.index {index!r} is out of range for {len(cluster[kind])} {kind}(s)"
        )
    return config


def cluster_timeout() -> float:
    raw = os.environ.get(ENV_TIMEOUT, "")
    try:
        return float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError as e:
        raise ValueError(f"{ENV_TIMEOUT} must be a number of seconds, got {raw!r}") from e


def heartbeat_timeout() -> float:
    raw = os.environ.get(ENV_HEARTBEAT, "")
    try:
        value = float(raw) if raw else DEFAULT_HEARTBEAT_S
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ValueError(f"{ENV_HEARTBEAT} must be a positive number of seconds, got {raw!r}")
    return value


def _configure_coordination(config: dict, heartbeat_s: float) -> None:
    """TF's own coordination-service set-up for MultiWorkerMirroredStrategy, longer heartbeat.

    The service (on the first chief/worker) declares a task dead when it sends no heartbeat
    for heartbeat_s; TF's 10 s default is exceeded by healthy workers on a loaded host, and
    then every collective fails. A dead worker is noticed after heartbeat_s.
    """
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context
    from tensorflow.python.training import server_lib
    from tensorflow.tsl.protobuf import coordination_config_pb2

    if config["task"]["type"] not in ("chief", "worker"):
        return
    spec = server_lib.ClusterSpec(config["cluster"])
    jobs = [
        coordination_config_pb2.CoordinatedJob(name=job, num_tasks=spec.num_tasks(job))
        for job in ("chief", "worker")
        if job in spec.jobs
    ]
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=multi_worker_util.coordination_leader(spec),
        heartbeat_timeout_in_ms=int(heartbeat_s * 1000),
        coordinated_jobs=jobs,
    )


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _listen(port: int) -> socket.socket:
    """A TCP listener on every interface (as TF's server binds), never accepting."""
    if socket.has_dualstack_ipv6():
        return socket.create_server(("", port), family=socket.AF_INET6, dualstack_ipv6=True)
    return socket.create_server(("", port))  # SO_REUSEADDR: TF binds the port right after


def _accepts(address: str, timeout_s: float) -> bool:
    try:
        with socket.create_connection(_split(address), timeout=timeout_s):
            return True
    except OSError:  # refused, unreachable, unknown host, timed out: not up yet
        return False


def rendezvous(config: dict, timeout_s: float, poll_s: float = 0.2) -> None:
    """Return once every other chief/worker of `config` accepts TCP; ValueError after timeout_s.

    Pure Python, before the strategy starts TF's server: TF's own wait for the peers blocks in
    C++ holding the GIL, where no time-out of ours runs. Meanwhile this task's port listens
    (never accepting), so peers waiting here see it up; a peer whose TF server already runs
    accepts too, so a worker started late still joins. The listener closes before returning.
    """
    jobs = {job: config["cluster"].get(job, []) for job in ("chief", "worker")}
    kind, index = config["task"]["type"], config["task"]["index"]
    own = jobs[kind][index] if kind in jobs else None
    waiting = [a for addresses in jobs.values() for a in addresses if a != own]
    task = f"{kind} {index}" + (f" at {own}" if own else "")
    listener = None
    if own is not None:
        try:
            listener = _listen(_split(own)[1])
        except OSError as e:
            raise ValueError(f"TF_CONFIG: {task}: cannot listen on port {_split(own)[1]}: "
                             f"{e.strerror or e}") from e  # fmt: skip
    deadline = time.monotonic() + timeout_s
    try:
        while waiting:
            waiting = [a for a in waiting if not _accepts(a, timeout_s=1.0)]
            if not waiting:
                break
            if time.monotonic() >= deadline:
                raise ValueError(
                    f"TF_CONFIG: worker(s) {', '.join(waiting)} not reachable within "
                    f"{timeout_s:g} s (this is {task}; start every worker, check the "
                    f"addresses, or raise {ENV_TIMEOUT})"
                )
            time.sleep(poll_s)
    finally:
        if listener is not None:
            listener.close()


def make_multi_worker_strategy(timeout_s: float | None = None):
    """MultiWorkerMirroredStrategy from TF_CONFIG, with every worker reachable in timeout_s.

    Must run before any other TF op. Without TF_CONFIG it is a one-worker strategy.
    """
    config = parse_tf_config(os.environ.get("TF_CONFIG"))
    timeout_s = cluster_timeout() if timeout_s is None else timeout_s
    heartbeat_s = heartbeat_timeout()
    import tensorflow as tf

    if config is None:
        return tf.distribute.MultiWorkerMirroredStrategy()
    task = f"{config['task']['type']} {config['task']['index']}"
    peers = [a for addresses in config["cluster"].values() for a in addresses]
    rendezvous(config, timeout_s)  # every peer is up: the strategy's own wait is short

    # Last resort, for a hang after the rendezvous (a peer that accepted but never joined):
    # TF waits in C++ holding the GIL, so a watchdog process prints the line and SIGKILLs us.
    message = (
        f"qtransformer: error: TF_CONFIG: the workers {peers} accepted connections but did not "
        f"all join within {timeout_s:g} s (this is {task}; restart every worker, check the "
        f"addresses, or raise {ENV_TIMEOUT})"
    )
    _configure_coordination(config, heartbeat_s)
    watchdog = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(timeout_s), message],
        stdin=subprocess.DEVNULL,
    )
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        _barrier(strategy)  # a first all-reduce: every worker is up and talking
    except (RuntimeError, ValueError, tf.errors.OpError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"TF_CONFIG: cannot start {task} of the cluster {peers}: {first}") from e
    finally:
        watchdog.kill()
        watchdog.wait()
    return strategy


_WATCHDOG = """
import os, signal, sys, time
pid, timeout, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
time.sleep(timeout)
sys.stderr.write(message + "\\n")
sys.stderr.flush()
os.kill(pid, signal.SIGKILL)
"""


def _barrier(strategy) -> None:
    import tensorflow as tf

    @tf.function
    def ones():
        return strategy.run(lambda: tf.ones([]))

    total = strategy.reduce("sum", ones(), axis=None)
    if int(total.numpy()) != strategy.num_replicas_in_sync:
        raise RuntimeError(f"barrier all-reduce gave {total.numpy()}")


def is_chief(strategy) -> bool:
    """True where this process writes the shared outputs (always, without multi-worker)."""
    return bool(strategy.extended.should_checkpoint)


def num_workers(strategy) -> int:
    resolver = getattr(strategy, "cluster_resolver", None)
    spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
    return sum(len(spec.get(job, [])) for job in ("chief", "worker")) or 1


def write_dir(workdir: str | Path, strategy) -> Path:
    """workdir on the chief; elsewhere a temporary folder, removed when the process exits.

    The folder is named by task and workdir (qtransformer-worker1-<hash> in $TMPDIR), and
    emptied at start: what a killed worker (SIGKILL skips atexit) left there is reclaimed by
    its restart and never restored from.
    """
    if is_chief(strategy):
        return Path(workdir)
    task = strategy.cluster_resolver
    key = hashlib.sha1(str(Path(workdir).resolve()).encode()).hexdigest()[:12]
    tmp = Path(tempfile.gettempdir()) / f"qtransformer-{task.task_type}{task.task_id}-{key}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    return tmp


def sync_from_chief(strategy, variables) -> None:
    """Give every worker the chief's values of `variables` (e.g. after the chief restored).

    One all-reduce sum in which only replica 0 (the chief's first device) contributes its
    values; a no-op on one worker, where every replica already holds the same values.
    """
    if num_workers(strategy) < 2:
        return
    import tensorflow as tf

    variables = list({id(v): v for v in variables}.values())

    @tf.function
    def chief_values():
        def replica_fn():
            ctx = tf.distribute.get_replica_context()
            first = tf.equal(ctx.replica_id_in_sync_group, 0)
            values = [tf.where(first, v.read_value(), tf.zeros_like(v)) for v in variables]
            out = list(values)
            for dtype in {v.dtype for v in variables}:  # one all-reduce per dtype (packed)
                index = [i for i, v in enumerate(variables) if v.dtype == dtype]
                summed = ctx.all_reduce("sum", [values[i] for i in index])
                for i, value in zip(index, summed, strict=True):
                    out[i] = value
            return out

        return strategy.run(replica_fn)

    reduced = strategy.experimental_local_results(chief_values())[0]
    for variable, value in zip(variables, reduced, strict=True):
        variable.assign(value)


def free_ports(n: int) -> list[int]:
    """n TCP ports on 127.0.0.1 that were free a moment ago."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def local_tf_configs(n: int, ports: list[int] | None = None) -> list[str]:
    """TF_CONFIG strings for n workers on 127.0.0.1 (worker 0 is the chief)."""
    ports = ports or free_ports(n)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    return [
        json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(n)
    ]


def launch_local_workers(
    argv: list[str], n: int, env: dict | None = None, logs: Path | None = None
) -> list[subprocess.Popen]:
    """Start `python -m qtransformer ARGV` n times as one loopback cluster.

    Each worker gets its TF_CONFIG; stdout+stderr go to logs/worker<i>.log if `logs` is given.
    """
    configs = local_tf_configs(n)
    procs = []
    for i, tf_config in enumerate(configs):
        out = subprocess.DEVNULL
        if logs is not None:
            Path(logs).mkdir(parents=True, exist_ok=True)
            out = open(Path(logs) / f"worker{i}.log", "w")  # noqa: SIM115 - owned by the child
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "qtransformer", *argv],
                env={**os.environ, **(env or {}), "TF_CONFIG": tf_config},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        )
    return procs
