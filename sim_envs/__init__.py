"""MuJoCo pick-and-place tasks built with dm_control, and a scripted expert.

    from qtransformer import sim_envs
    env = sim_envs.make("pick_place", seed=0, image_size=64)
    policy = sim_envs.expert_policy(env, noise=0.0, seed=0)
    time_step = env.reset()
    while not time_step.last():
        time_step = env.step(policy(time_step))

Tasks: `TASKS` = ("lift", "pick_place", "stack"). Units, action and state layout: `common`;
observation modes (`make(..., obs="privileged" | "objects" | "pixels")`): `observations`.
Names are imported lazily so that importing this package (e.g. for the `render` CLI module)
does not load MuJoCo.
"""

from __future__ import annotations

import importlib

TASKS = ("lift", "pick_place", "stack")
OBS_MODES = ("privileged", "objects", "pixels")  # observations.py; importable without MuJoCo

_LAZY = {
    "make": "suite",
    "expert_policy": "expert",
    "write_video": "video",
    "render_frame": "video",
    "to_py_environment": "adapters",
    "STATE_SIZE": "common",
    "TIME_LIMIT_STEPS": "common",
}

__all__ = ["TASKS", "OBS_MODES", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
