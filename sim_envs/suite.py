"""The task registry and the `make` factory."""

from __future__ import annotations

import importlib

import dm_env

from qtransformer.sim_envs import TASKS

MAX_IMAGE_SIZE = 1024  # the offscreen buffer size in assets/scene.xml


def make(
    task_name: str, seed: int | None = None, image_size: int | None = None, obs: str = "privileged"
) -> dm_env.Environment:
    """Builds the dm_control environment of `task_name` (one of `TASKS`).

    Args:
      task_name: registered task name.
      seed: seeds the task's `random` (object poses, colours, shapes); None draws fresh entropy.
      image_size: if given, observations also hold `image`, uint8[image_size, image_size, 3], from
        the fixed "overhead" camera (common.OBS_CAMERA).
      obs: observation mode, one of `observations.MODES` ("privileged", "objects", "pixels");
        "pixels" renders 64x64 frames unless `image_size` says otherwise.

    Returns:
      a `control.Environment`; observation {"state": float32[observations.STATE_SIZES[obs]]
      (+ "image")}, action float32[4].
    """
    if task_name not in TASKS:
        raise ValueError(f"unknown task {task_name!r}; valid tasks: {', '.join(TASKS)}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"seed must be a non-negative int or None; got {seed!r}")
    if image_size is not None and (
        isinstance(image_size, bool)
        or not isinstance(image_size, int)
        or not 1 <= image_size <= MAX_IMAGE_SIZE
    ):
        raise ValueError(
            f"image_size must be None or an int in [1, {MAX_IMAGE_SIZE}]; got {image_size!r}"
        )
    from qtransformer.sim_envs import observations

    image_size = observations.check_mode(obs, image_size)
    module = importlib.import_module(f"qtransformer.sim_envs.{task_name}")
    return module.load(seed=seed, image_size=image_size, obs=obs)
