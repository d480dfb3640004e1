"""The policy on disk: its specs, the PolicySaver, and the atomic export into the workdir.

`train` and the CQL-SAC baseline export the greedy policy with tf_agents' PolicySaver as
WORKDIR/policies/<step> and WORKDIR/policy, so `eval` (and a robot) load it with
`tf.saved_model.load` and no Python class of ours. Imports TensorFlow lazily.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from qtransformer.commands import output_lock


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
