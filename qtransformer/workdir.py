"""Training workdir helpers: config check, policy export, specs and strategy.

Imports TensorFlow lazily, so the `train` CLI module stays fast to import.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import uuid
from pathlib import Path

from qtransformer import output_lock
from qtransformer.config import CLASSIFICATION, TrainConfig


def model_shape(config: TrainConfig) -> dict:
    """The fields that fix the network's variables: a checkpoint only restores if they match."""
    model = config.model
    return {
        "action_bins": config.data.action_bins,
        "embed_dim": model.embed_dim,
        "num_layers": model.num_layers,
        "num_heads": model.num_heads,
        "head": model.head,
        "head_rank": model.head_rank,
        "value_bins": model.value_bins if config.loss in CLASSIFICATION else None,
        "history": config.data.history,  # W > 1 adds the window-step embedding
    }


def check_workdir_config(workdir: Path, config: TrainConfig) -> None:
    """Refuse a workdir trained with another model shape; then (re)write its config.json."""
    path = Path(workdir) / "config.json"
    if path.exists():
        old = TrainConfig.from_file(path)
        before, now = model_shape(old), model_shape(config)
        diff = {k: (before[k], now[k]) for k in before if before[k] != now[k]}
        if diff:
            raise ValueError(
                f"{path} was trained with a different model shape {diff} (old, new); "
                "use a new --workdir or the same model flags"
            )
    output_lock.write_text_atomic(path, config.to_json() + "\n")


def policy_specs(meta):
    """(time_step_spec, action_spec) of the exported policy from a DatasetMeta."""
    import tensorflow as tf
    from tf_agents.specs import tensor_spec
    from tf_agents.trajectories import time_step as ts

    obs = {
        "state": tf.TensorSpec([meta.state_dim], tf.float32, name="state"),
        "instruction": tf.TensorSpec([], tf.string, name="instruction"),
    }
    if meta.image_shape:
        obs["image"] = tf.TensorSpec(list(meta.image_shape), tf.uint8, name="image")
    low = [float(x) for x in meta.action_low]
    high = [float(x) for x in meta.action_high]
    action = tensor_spec.BoundedTensorSpec(
        [len(low)], tf.float32, minimum=low, maximum=high, name="action"
    )
    return ts.time_step_spec(obs), action


@functools.cache
def make_strategy(name: str):
    """default / mirrored / multi_worker / tpu via tf_agents strategy_utils.

    mirrored without GPUs mirrors over all logical CPU devices (useful for tests).
    Cached: two MirroredStrategy objects over the same devices in one process make
    their collective ops collide, so repeated `train` calls share one. Call it before any
    other TF op: MultiWorkerMirroredStrategy configures the runtime (see `cluster`).
    """
    import tensorflow as tf
    from tf_agents.train.utils import strategy_utils

    if name == "multi_worker":  # TF_CONFIG checked, bounded wait for the other workers
        from qtransformer.cluster import make_multi_worker_strategy

        return make_multi_worker_strategy()
    if name == "mirrored" and not tf.config.list_logical_devices("GPU"):
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=cpus)
    if name not in ("default", "mirrored", "tpu"):
        raise ValueError(f"unknown strategy {name!r}; valid: default, mirrored, multi_worker, tpu")
    return strategy_utils.get_strategy(tpu="local" if name == "tpu" else None,
                                       use_gpu=name == "mirrored")  # fmt: skip


def policy_saver(policy, train_step):
    """A tf_agents PolicySaver (traces the policy once; reuse it for every export)."""
    from tf_agents.policies import policy_saver as saver_lib

    return saver_lib.PolicySaver(policy, batch_size=None, train_step=train_step)


def export_policy(saver, workdir: Path, step: int) -> Path:
    """Save to WORKDIR/policies/<step> and WORKDIR/policy, each swapped in atomically.

    A failed write (disk full) removes its temporary folders and raises WriteFailed naming
    the export; a crash's leftovers (`.policy.<hex>`, `policies/.<step>.<hex>`) are removed
    when the workdir is next locked (output_lock.WORKDIR_TEMPS).
    """
    workdir = Path(workdir)
    tmp = workdir / f".policy.{uuid.uuid4().hex}"
    with output_lock.writing(workdir / "policies" / str(step), remove=[tmp]):
        saver.save(str(tmp))
    for target in (workdir / "policies" / str(step), workdir / "policy"):
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        with output_lock.writing(target, remove=[tmp, staged]):
            shutil.copytree(tmp, staged)
        old = target.with_name(f".{target.name}.old.{uuid.uuid4().hex}")
        if target.exists():
            os.replace(target, old)
        os.replace(staged, target)
        shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return workdir / "policy"


def check_resume(workdir: Path, dataset_dir, meta, vocabulary) -> str | None:
    """Before the Learner restores WORKDIR: refuse a dataset of another spec, skip a corrupt
    newest checkpoint (qtransformer/checkpoints.py). Returns a note for the user, or None.

    WORKDIR/dataset_spec.json records what fixes the network's input and output variables
    (state size, action size, image shape, instruction words) and which dataset gave them.
    """
    from qtransformer.checkpoints import fall_back_to_readable

    spec = {
        "state_dim": int(meta.state_dim),
        "action_dim": len(meta.action_low),
        "image_shape": list(meta.image_shape) if meta.image_shape else None,
        "vocabulary": list(vocabulary),
    }
    path = Path(workdir) / "dataset_spec.json"
    ckpt_dir = Path(workdir) / "train" / "checkpoints"
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"cannot read {path}: {e}; use a new --workdir") from e
        diff = [k for k in spec if old.get(k) != spec[k]]
        if diff and ckpt_dir.is_dir() and any(ckpt_dir.glob("ckpt-*.index")):
            shown = ", ".join(f"{k} {_short(old.get(k))} -> {_short(spec[k])}" for k in diff)
            raise ValueError(
                f"{workdir} was trained on dataset {old.get('dataset')} with another spec than "
                f"{dataset_dir} ({shown}); its checkpoints cannot hold this dataset: use a new "
                "--workdir, or the dataset it was trained on"
            )
    note = fall_back_to_readable(ckpt_dir)
    output_lock.write_text_atomic(
        path, json.dumps({"dataset": str(dataset_dir), **spec}, indent=2) + "\n"
    )
    return note


def _short(value) -> str:
    if isinstance(value, list) and len(value) > 6:
        return f"{len(value)} words"
    return str(value)
