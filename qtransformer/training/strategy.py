"""The tf.distribute strategy of a training run: default, mirrored, multi_worker or tpu.

Imports TensorFlow lazily, so the `train` CLI module stays fast to import.
"""

from __future__ import annotations

import functools


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
        from qtransformer.training.cluster import make_multi_worker_strategy

        return make_multi_worker_strategy()
    if name == "mirrored" and not tf.config.list_logical_devices("GPU"):
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=cpus)
    if name not in ("default", "mirrored", "tpu"):
        raise ValueError(f"unknown strategy {name!r}; valid: default, mirrored, multi_worker, tpu")
    return strategy_utils.get_strategy(tpu="local" if name == "tpu" else None,
                                       use_gpu=name == "mirrored")  # fmt: skip
