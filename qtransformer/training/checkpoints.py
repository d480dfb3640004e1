"""Resume from the newest checkpoint that reads, never from a corrupt one.

A checkpoint cut short (disk full, an interrupted copy) makes the tf_agents Learner fail
with `IndexError: Read less bytes than requested` when it restores the latest one, although
older good checkpoints sit beside it. `fall_back_to_readable` runs before the Learner is
built: it reads every tensor of the checkpoints in WORKDIR/train/checkpoints, newest first,
and if the newest does not read, points the directory's `checkpoint` state file at the
newest one that does (the Learner's tf.train.CheckpointManager restores what that file
names). No checkpoint file is deleted; the bad one is overwritten only when training
reaches its step again, like any checkpoint of that step.
"""

from __future__ import annotations

import re
from pathlib import Path


def checkpoint_paths(ckpt_dir: str | Path) -> list[str]:
    """Checkpoint prefixes in `ckpt_dir`, oldest first (from the state file, else the files)."""
    import tensorflow as tf

    ckpt_dir = Path(ckpt_dir)
    paths: list[str] = []
    try:
        state = tf.train.get_checkpoint_state(str(ckpt_dir))
        if state is not None:
            paths = [str(ckpt_dir / Path(p).name) for p in state.all_model_checkpoint_paths]
    except Exception:  # noqa: BLE001 - a garbled state file: fall back to the files themselves
        paths = []
    found = sorted(
        (int(m.group(1)), str(ckpt_dir / f"ckpt-{m.group(1)}"))
        for p in ckpt_dir.glob("ckpt-*.index")
        if (m := re.fullmatch(r"ckpt-(\d+)\.index", p.name))
    )
    for _, path in found:  # files the state file does not list (e.g. it was lost)
        if path not in paths:
            paths.append(path)
    return sorted(paths, key=_number)


def _number(path: str) -> int:
    m = re.search(r"-(\d+)$", path)
    return int(m.group(1)) if m else -1


def read_problem(path: str) -> str | None:
    """None if every tensor of checkpoint `path` reads, else the reader's reason (one line)."""
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(path)
        for name in reader.get_variable_to_dtype_map():
            reader.get_tensor(name)
    except Exception as e:  # noqa: BLE001 - TF raises IndexError, DataLossError, OpError...
        text = str(e).strip().splitlines()
        return f"{type(e).__name__}: {text[0] if text else ''}".strip(": ")
    return None


def fall_back_to_readable(ckpt_dir: str | Path) -> str | None:
    """Make the newest readable checkpoint the one to restore; returns a note if it is not
    the newest (None when there is nothing to say). Raises ValueError if none reads."""
    from tensorflow.python.checkpoint import checkpoint_management

    ckpt_dir = Path(ckpt_dir)
    paths = checkpoint_paths(ckpt_dir) if ckpt_dir.is_dir() else []
    if not paths:
        return None
    bad = []
    for path in reversed(paths):
        problem = read_problem(path)
        if problem is None:
            break
        bad.append((path, problem))
    else:
        reasons = "; ".join(f"{Path(p).name}: {why}" for p, why in bad)
        raise ValueError(
            f"no checkpoint in {ckpt_dir} can be read ({reasons}); restore the folder from a "
            "backup or train into a new --workdir"
        )
    if not bad:
        return None
    # Newest readable last: the CheckpointManager restores it, and later saves rotate the
    # unreadable ones out in the usual order. Written atomically by TensorFlow.
    order = [p for p in paths if p != path] + [path]
    here = ckpt_dir.resolve()  # absolute paths in, names relative to the folder written
    checkpoint_management.update_checkpoint_state_internal(
        save_dir=str(here),
        model_checkpoint_path=str(here / Path(path).name),
        all_model_checkpoint_paths=[str(here / Path(p).name) for p in order],
        save_relative_paths=True,
    )
    skipped = "; ".join(f"{Path(p).name} ({why})" for p, why in bad)
    return (
        f"checkpoint {skipped} in {ckpt_dir} cannot be read; resuming from {Path(path).name}, "
        "the newest one that reads (no file deleted)"
    )
