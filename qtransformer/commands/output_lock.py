"""One writer per output, and a failed write as one line: locks, atomic writes, temp cleanup.

Why: two `train` runs on one workdir both ran and interleaved their checkpoints, and a full
disk ended in a traceback that left `.policy.<hex>` folders behind for good.

- `acquire(output)` takes `OUTPUT/.lock` (or `.NAME.lock` beside a dataset, which is renamed
  into place when complete) with `flock` and records {pid, host, start_time, boot_id} in it.
  The kernel drops a flock when its process dies, so a lock left by kill -9 or a reboot is
  taken over with a line that says so. A live holder, or one on another host (whose process
  we cannot see), is refused: `OutputInUse`, one line naming it. Taking the lock also
  removes the temporary files an earlier crash left in the output: under the lock, nobody
  else can be writing them. Readers never call this, so they never wait.
- `writing(target)` turns a failed write (ENOSPC, EDQUOT, EIO, EROFS, EFBIG), from Python or
  TensorFlow, into `WriteFailed`: one line naming the path and the errno. It also removes the
  temporary files of that write, so nothing half-written is kept.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import os
import re
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

# Temporary names of a train workdir's writers (training/export.py, checkpoints by TensorFlow).
WORKDIR_TEMPS = (".policy.*", "policies/.*", ".*.tmp", "train/checkpoints/*_temp",
                 "train/checkpoints/checkpoint.tmp*")  # fmt: skip
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EFBIG)
_HELD: dict[str, list] = {}  # lock file -> [fd, holds]: re-entrant within this process
_ORDER: list[OutputLock] = []  # handles in the order taken, for `releasing`


class OutputInUse(RuntimeError):
    """Another process holds the lock of an output: a user error (one line, exit code 2)."""


class WriteFailed(OSError):
    """A write that failed (disk full, I/O error): one line naming the path and the errno."""

    def __str__(self) -> str:
        code = errno.errorcode.get(self.errno, "?")
        hint = "; free some space and run the command again" if self.errno in (
            errno.ENOSPC, errno.EDQUOT) else ""  # fmt: skip
        return f"cannot write {self.filename}: {self.strerror} (errno {self.errno}, {code}){hint}"


class OutputLock:
    """A held lock; `release()` (or leaving a `with` block) gives it back."""

    def __init__(self, lock_file: Path, made_dir: Path | None):
        self.lock_file, self._made_dir, self._held = lock_file, made_dir, True
        _ORDER.append(self)

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        _ORDER.remove(self)
        entry = _HELD[str(self.lock_file)]
        entry[1] -= 1
        if entry[1] == 0:
            del _HELD[str(self.lock_file)]
            self.lock_file.unlink(missing_ok=True)  # before unlocking: see the inode check
            os.close(entry[0])
            if self._made_dir is not None:
                with contextlib.suppress(OSError):  # a run refused later: no empty workdir
                    self._made_dir.rmdir()

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def acquire(output: str | Path, *, beside: bool = False, temps: Iterable[str] = (),
            log: Callable[[str], object] | None = None) -> OutputLock:  # fmt: skip
    """Lock `output` for this process (again, if it already holds it) or raise OutputInUse.

    beside: the lock is `.NAME.lock` in the parent (an output renamed into place when
    complete), else `OUTPUT/.lock`. temps: glob patterns, relative to the lock's folder, of
    temporary files an earlier crash may have left; they are removed once the lock is ours.
    """
    output = Path(output)
    folder = output.parent if beside else output
    lock_file = (folder / (f".{output.name}.lock" if beside else ".lock")).resolve()
    if str(lock_file) in _HELD:
        _HELD[str(lock_file)][1] += 1
        return OutputLock(lock_file, None)
    made_dir = None if folder.exists() or beside else folder
    folder.mkdir(parents=True, exist_ok=True)
    fd = _lock_fd(lock_file, output)
    holder = _read(lock_file)
    if holder:  # the previous holder did not release: refuse if it may still run
        why = _stale_reason(holder)
        if why is None:
            os.close(fd)
            raise OutputInUse(_in_use(output, holder, lock_file))
        (log or _stderr)(f"taking over the lock of {output} from {_describe(holder)}: {why}")
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(_me()).encode())
    os.fsync(fd)
    _HELD[str(lock_file)] = [fd, 1]
    removed = clean_temps(folder, temps)
    if removed:
        shown = ", ".join(str(p.relative_to(folder)) for p in removed)
        (log or _stderr)(f"removed what an interrupted write left in {folder}: {shown}")
    return OutputLock(lock_file, made_dir)


def releasing(fn: Callable) -> Callable:
    """Decorator: locks taken during a call of `fn` are released when it returns or raises."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        before = list(_ORDER)
        try:
            return fn(*args, **kwargs)
        finally:
            for handle in [h for h in reversed(_ORDER) if all(h is not b for b in before)]:
                handle.release()

    return wrapper


def clean_temps(folder: str | Path, patterns: Iterable[str]) -> list[Path]:
    """Remove what matches `patterns` under `folder` (only call with the lock held)."""
    found = sorted({p for pattern in patterns for p in Path(folder).glob(pattern)})
    for path in found:
        _remove(path)
    return found


@contextlib.contextmanager
def writing(target: str | Path, remove: Iterable[Path] | Callable[[], Iterable[Path]] = ()
            ) -> Iterator[None]:  # fmt: skip
    """Remove `remove` if the block fails; a failed write becomes WriteFailed naming `target`."""
    try:
        yield
    except BaseException as e:
        for path in remove() if callable(remove) else remove:
            _remove(Path(path))
        failure = write_failure(e, target)
        if failure is None or failure is e:
            raise
        raise failure from e


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write `text` to a temp file beside `path`, then rename: `path` is old or new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")  # the umask's mode, not 0600
    with writing(path, remove=[tmp]):
        tmp.write_text(text)
        os.replace(tmp, path)
    return path


def write_failure(error: BaseException, target: str | Path | None = None) -> WriteFailed | None:
    """`error` (or its cause) as WriteFailed if it is a failed write, else None.

    Knows OSError, shutil.Error (copytree's list of failures) and TensorFlow's errors, whose
    messages end in the C library's text ("...; No space left on device").
    """
    seen = error
    while seen is not None:
        if isinstance(seen, WriteFailed):
            return seen
        if isinstance(seen, OSError) and seen.errno in WRITE_ERRNOS:
            path = target or seen.filename or "?"
            return WriteFailed(seen.errno, os.strerror(seen.errno), str(path))
        entries = seen.args[0] if isinstance(seen, shutil.Error) and seen.args else None
        for _, dst, why in entries if isinstance(entries, list) else [(None, None, str(seen))]:
            for code in WRITE_ERRNOS:
                if os.strerror(code) in why:  # TF: "PATH; No space left on device"
                    m = re.search(rf"(\S+); {os.strerror(code)}|'([^']+)'", why)
                    path = target or dst or (m and (m[1] or m[2])) or "?"
                    return WriteFailed(code, os.strerror(code), str(path))
        seen = seen.__cause__ or seen.__context__
    return None


def _lock_fd(lock_file: Path, output: Path) -> int:
    """An fd of `lock_file` holding its flock, or raise OutputInUse."""
    while True:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputInUse(_in_use(output, _read(lock_file, wait_s=2.0), lock_file)) from None
        try:  # the holder unlinked the file as we opened it: lock the new one instead
            if os.fstat(fd).st_ino == os.stat(lock_file).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _read(lock_file: Path, wait_s: float = 0.0) -> dict:
    """The holder's record; a winner writes it just after its flock, so wait a moment."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return json.loads(lock_file.read_text())
        except (OSError, ValueError):
            if time.monotonic() >= deadline:
                return {}
            time.sleep(0.05)


def _stale_reason(holder: dict) -> str | None:
    """Why the holder cannot be running any more, or None if it may be."""
    if holder.get("host") != socket.gethostname():
        return None  # its process is not ours to see
    if holder.get("boot_id") != _boot_id():
        return "the host has rebooted since"
    pid = holder.get("pid")
    if not isinstance(pid, int) or not _alive(pid, holder.get("pid_start")):
        return f"process {pid} is gone"
    return None


def _alive(pid: int, pid_start: int | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    stat = _proc_stat(pid)
    if stat is None:
        return True
    return stat[0] != "Z" and (pid_start is None or stat[1] == pid_start)  # zombie; pid reused


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks) from /proc, or None where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0], int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _me() -> dict:
    stat = _proc_stat(os.getpid())
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "start_time": time.strftime("%Y-%m-%d %H:%M:%S %z"), "boot_id": _boot_id(),
            "pid_start": stat and stat[1], "command": " ".join(sys.argv)[:200]}  # fmt: skip


def _describe(holder: dict) -> str:
    return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} "
            f"(started {holder.get('start_time', '?')})")  # fmt: skip


def _in_use(output: Path, holder: dict, lock_file: Path) -> str:
    elsewhere = holder.get("host") not in (None, socket.gethostname())
    hint = f"; if that process is gone, delete {lock_file}" if elsewhere else ""
    return (f"{output} is in use by another writer, {_describe(holder)}: wait for it to finish "
            f"or choose another output{hint}")  # fmt: skip


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)
