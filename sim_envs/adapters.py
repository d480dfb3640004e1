"""tf_agents adapter: the dm_control tasks as a tf_agents PyEnvironment."""

from __future__ import annotations

from qtransformer.sim_envs import suite


def to_py_environment(
    task: str, seed: int | None = None, image_size: int | None = None, obs: str = "privileged"
):
    """`make(task, seed, image_size, obs)` wrapped in tf_agents' DmControlWrapper.

    Time steps become tf_agents TimeSteps (reward and discount float32, step_type int32); the
    action spec is BoundedArraySpec((4,), float32, -1, 1). Drivers and py policies run on it.
    """
    from tf_agents.environments import dm_control_wrapper

    env = suite.make(task, seed=seed, image_size=image_size, obs=obs)
    return dm_control_wrapper.DmControlWrapper(env)
