"""Shared physics, task base class and environment builder of the pick-and-place suite.

Every task is a dm_control `control.Environment` around a `Physics` (named queries on the shared
scene in assets/scene.xml) and a `base.Task` subclass of `GripperTask` below.

Control: 20 Hz; one control step = 10 physics substeps of 5 ms. An episode is truncated after
`TIME_LIMIT_STEPS` = 80 control steps (4 s; last step with discount 1) and terminates with
reward 1.0 and discount 0 on the first step whose resulting state is a success (also when that
step is the 80th).

Action (float32[4], all tasks, bounds [-1, 1]; values outside are clipped, NaN/inf and other
shapes raise ValueError):
  a[0:3] = (dx, dy, dz): the mocap target of the gripper moves by MAX_DELTA * a[0:3] metres
           (0.03 m per step at |a| = 1), then is clipped to the workspace box;
  a[3]   = gripper: -1 fully open, +1 fully closed (absolute target, linear in between:
           finger target = 0.04 m * (1 - a[3]) / 2). Positive closes, negative opens.

State in the default "privileged" mode (float32[16], all tasks; the "objects" and "pixels"
modes are in observations.py):
  [0:3]   grip point position (between the fingertips), metres, table top is z = 0
  [3]     gripper opening: finger gap / 0.082 m (1 = fully open, ~0.49 when holding a 4 cm object)
  [4:7]   object position (the object named in the instruction; top cube for stack)
  [7:10]  target position, where the object centre should go (lift: 12 cm above its start;
          pick_place: bowl centre at resting height, z = 0.024; stack: base cube centre + 4 cm)
  [10:13] object - grip point
  [13:16] target - object
"""

from __future__ import annotations

import pathlib
from collections import OrderedDict

import numpy as np
from dm_control.mujoco import engine
from dm_control.rl import control
from dm_control.suite import base
from dm_env import specs

ASSETS = pathlib.Path(__file__).parent / "assets"
CONTROL_TIMESTEP = 0.05
TIME_LIMIT_STEPS = 80
MAX_DELTA = 0.03
WORKSPACE_LOW = np.array([-0.2, -0.2, 0.02])
WORKSPACE_HIGH = np.array([0.2, 0.2, 0.25])
FINGER_OPEN = 0.04
MAX_GAP = 0.002 + 2 * FINGER_OPEN
HALF = 0.02  # half-width (along the finger axis y) and half-height of every object
HAND_START = np.array([0.0, 0.0, 0.12])
STATE_SIZE = 16
# Observation images come from this camera (assets/scene.xml: 75 degrees down, the workspace fills
# the frame); videos for people use "front" (video.render_frame).
OBS_CAMERA = "overhead"
COLORS = {
    "red": (0.85, 0.12, 0.1, 1.0),
    "green": (0.15, 0.7, 0.2, 1.0),
    "blue": (0.12, 0.3, 0.9, 1.0),
    "yellow": (0.95, 0.8, 0.1, 1.0),
}


def load_physics(task_file: str) -> Physics:
    """Builds the Physics of `assets/<task_file>` (which includes assets/scene.xml)."""
    xml = (ASSETS / task_file).read_text()
    return Physics.from_xml_string(xml, assets={"scene.xml": (ASSETS / "scene.xml").read_bytes()})


class Physics(engine.Physics):
    """Named queries on the shared scene; ids are looked up once, reads are plain indexing."""

    def _ids(self) -> dict:
        if not hasattr(self, "_cached_ids"):
            m = self.model
            self._cached_ids = {
                "grip": m.name2id("grip", "site"),
                "fingers": [
                    m.jnt_qposadr[m.name2id(n, "joint")] for n in ("left_finger", "right_finger")
                ],
            }
        return self._cached_ids

    def grip_pos(self) -> np.ndarray:
        return self.data.site_xpos[self._ids()["grip"]].copy()

    def gripper_gap(self) -> float:
        """Distance between the inner finger faces, metres."""
        return 0.002 + float(self.data.qpos[self._ids()["fingers"]].sum())

    def body_pos(self, name: str) -> np.ndarray:
        return self.named.data.xpos[name].copy()

    def set_free_body(self, name: str, pos: np.ndarray) -> None:
        """Places a free-jointed body upright (identity orientation) at rest."""
        self.named.data.qpos[name] = np.concatenate([pos, [1.0, 0.0, 0.0, 0.0]])
        self.named.data.qvel[name] = 0.0

    def set_rgba(self, geom_names, rgba) -> None:
        for name in geom_names:
            self.named.model.geom_rgba[name] = rgba


def sample_xy(
    random: np.random.RandomState,
    low: float,
    high: float,
    far_from=(),
    min_dist=0.09,
    far_from_box=(),
    box_dist=0.1,
    tries=1000,
) -> np.ndarray:
    """Uniform xy in [low, high]^2, at Euclidean distance >= min_dist from each point in `far_from`
    and max-norm distance >= box_dist from each point in `far_from_box` (rejection sampling)."""
    for _ in range(tries):
        xy = random.uniform(low, high, size=2)
        if all(np.linalg.norm(xy - p) >= min_dist for p in far_from) and all(
            np.max(np.abs(xy - p)) >= box_dist for p in far_from_box
        ):
            return xy
    raise RuntimeError("could not place an object; the workspace is too crowded")


class GripperTask(base.Task):
    """Base task: mocap gripper control, 16-d state, sparse success reward and termination.

    Subclasses implement `_init_scene(physics)` (place objects, set colours and
    `self.language_instruction`), `object_pos`, `target_pos`, `entities` and `success`.
    """

    def __init__(self, random=None, image_size: int | None = None, obs: str = "privileged"):
        from qtransformer.sim_envs import observations

        super().__init__(random=random)
        self.image_size = observations.check_mode(obs, image_size)
        self.obs = obs
        self.language_instruction = ""

    # -- episode ---------------------------------------------------------------------------------
    def initialize_episode(self, physics: Physics) -> None:
        start = HAND_START + np.array([*self.random.uniform(-0.03, 0.03, size=2), 0.0])
        physics.data.mocap_pos[0] = start
        physics.named.data.qpos["hand"] = np.concatenate([start, [1.0, 0.0, 0.0, 0.0]])
        physics.named.data.qpos[["left_finger", "right_finger"]] = FINGER_OPEN
        physics.data.ctrl[:] = FINGER_OPEN
        self._init_scene(physics)
        super().initialize_episode(physics)

    def _init_scene(self, physics: Physics) -> None:
        raise NotImplementedError

    # -- action ----------------------------------------------------------------------------------
    def action_spec(self, physics: Physics) -> specs.BoundedArray:
        """(dx, dy, dz, gripper) in [-1, 1]; see the module docstring for the units."""
        return specs.BoundedArray((4,), np.float32, -1.0, 1.0, name="dx_dy_dz_gripper")

    def before_step(self, action, physics: Physics) -> None:
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (4,):
            raise ValueError(
                f"action must have shape (4,) (dx, dy, dz, gripper); got {action.shape}"
            )
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action must be finite; got {action.tolist()}")
        action = np.clip(action, -1.0, 1.0)  # documented: out-of-bounds actions are clipped
        target = physics.data.mocap_pos[0] + MAX_DELTA * action[:3]
        physics.data.mocap_pos[0] = np.clip(target, WORKSPACE_LOW, WORKSPACE_HIGH)
        physics.data.ctrl[:] = FINGER_OPEN * (1.0 - action[3]) / 2.0

    # -- observation -----------------------------------------------------------------------------
    # `self.obs` picks what the learner sees (observations.py); the expert reads `privileged_state`.
    def observation_spec(self, physics: Physics) -> OrderedDict:
        from qtransformer.sim_envs import observations

        size = observations.STATE_SIZES[self.obs]
        spec = OrderedDict(state=specs.Array((size,), np.float32, name="state"))
        if self.image_size:
            spec["image"] = specs.BoundedArray(
                (self.image_size, self.image_size, 3), np.uint8, 0, 255, name="image"
            )
        return spec

    def get_observation(self, physics: Physics) -> OrderedDict:
        from qtransformer.sim_envs import observations

        if self.obs == "privileged":
            state = self.privileged_state(physics)
        elif self.obs == "objects":
            state = observations.objects_state(physics, self.entities(physics))
        else:
            state = observations.proprioception(physics)
        obs = OrderedDict(state=state)
        if self.image_size:
            obs["image"] = physics.render(self.image_size, self.image_size, camera_id=OBS_CAMERA)
        return obs

    def privileged_state(self, physics: Physics) -> np.ndarray:
        """float32[16], the layout in the module docstring (what the scripted expert reads)."""
        grip, obj, target = physics.grip_pos(), self.object_pos(physics), self.target_pos(physics)
        return np.concatenate(
            [grip, [physics.gripper_gap() / MAX_GAP], obj, target, obj - grip, target - obj]
        ).astype(np.float32)

    def entities(self, physics: Physics) -> list[tuple[str, str, np.ndarray]]:
        """[(kind, colour, xyz)] of every object and the bowl, in an instruction-free order."""
        raise NotImplementedError

    # -- reward ----------------------------------------------------------------------------------
    def get_reward(self, physics: Physics) -> float:
        return 1.0 if self.success(physics) else 0.0

    def get_termination(self, physics: Physics) -> float | None:
        return 0.0 if self.success(physics) else None

    def released(self, physics: Physics) -> bool:
        """Fingers opened clear of a 4 cm object (at least 5 mm per side)."""
        return physics.gripper_gap() > 2 * HALF + 0.01

    def object_pos(self, physics: Physics) -> np.ndarray:
        raise NotImplementedError

    def target_pos(self, physics: Physics) -> np.ndarray:
        raise NotImplementedError

    def success(self, physics: Physics) -> bool:
        raise NotImplementedError


class Environment(control.Environment):
    """control.Environment whose success on the time-limit step still terminates (discount 0)."""

    def step(self, action):
        time_step = super().step(action)
        if time_step.last() and time_step.reward and time_step.discount != 0.0:
            time_step = time_step._replace(discount=0.0)
        return time_step


def build(physics: Physics, task: GripperTask) -> Environment:
    return Environment(
        physics,
        task,
        time_limit=TIME_LIMIT_STEPS * CONTROL_TIMESTEP,
        control_timestep=CONTROL_TIMESTEP,
    )
