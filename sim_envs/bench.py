"""Simulation speed: control steps/s of a task vs raw MuJoCo stepping of the same model.

python -c "from qtransformer.sim_envs import bench; print(bench.sim_speed())"
"""

from __future__ import annotations

import time

import numpy as np

from qtransformer.sim_envs import suite


def sim_speed(task: str = "pick_place", steps: int = 2000, seed: int = 0) -> dict:
    """Measures `steps` control steps with state observations and uniform random actions.

    Returns a dict: `env_steps_per_s` (through dm_control, resets included),
    `raw_physics_control_steps_per_s` (mujoco.mj_step on the same model, the same number of
    substeps per control step), `ratio` = env / raw (<= 1: the Python overhead), `substeps`.
    """
    import mujoco

    if steps <= 0:
        raise ValueError(f"sim_speed: steps must be positive; got {steps}")
    env = suite.make(task, seed=seed)
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, size=(steps, 4)).astype(np.float32)
    env.reset()
    start = time.perf_counter()
    for action in actions:
        if env.step(action).last():
            env.reset()
    env_time = time.perf_counter() - start

    substeps = round(env.control_timestep() / env.physics.model.opt.timestep)
    model, data = env.physics.model.ptr, mujoco.MjData(env.physics.model.ptr)
    start = time.perf_counter()
    for _ in range(steps):
        mujoco.mj_step(model, data, substeps)
    raw_time = time.perf_counter() - start
    env_rate, raw_rate = steps / env_time, steps / raw_time
    return {
        "task": task,
        "steps": steps,
        "substeps": substeps,
        "env_steps_per_s": env_rate,
        "raw_physics_control_steps_per_s": raw_rate,
        "ratio": env_rate / raw_rate,
    }
