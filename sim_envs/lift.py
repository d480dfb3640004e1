"""lift: grasp the named object and raise its centre above 10 cm.

Objects: a 4 cm cube and a 6 x 4 x 4 cm brick (long side along x), axis-aligned.

The other object is a distractor of another colour. Success: the target object's centre is higher
than `LIFT_HEIGHT` (it starts at 2 cm), so it must be held. The target point in the state is 12 cm
above the object's start, where the scripted expert carries it.
"""

from __future__ import annotations

import numpy as np

from qtransformer.sim_envs import common

LIFT_HEIGHT = 0.10
CARRY_HEIGHT = 0.12
SHAPES = ("cube", "brick")


class Lift(common.GripperTask):
    """Lift the `shape` of a random colour; the other shape is a distractor."""

    def _init_scene(self, physics: common.Physics) -> None:
        shape, other = SHAPES if self.random.rand() < 0.5 else SHAPES[::-1]
        colour, other_colour = self.random.choice(list(common.COLORS), size=2, replace=False)
        obj_xy = common.sample_xy(self.random, -0.12, 0.12)
        other_xy = common.sample_xy(self.random, -0.14, 0.14, far_from=[obj_xy])
        physics.set_free_body(shape, np.array([*obj_xy, common.HALF]))
        physics.set_free_body(other, np.array([*other_xy, common.HALF]))
        physics.set_rgba([shape], common.COLORS[colour])
        physics.set_rgba([other], common.COLORS[other_colour])
        self._object = shape
        self._target = np.array([*obj_xy, CARRY_HEIGHT])
        self._colours = {shape: colour, other: other_colour}
        self.language_instruction = f"lift the {colour} {shape}"

    def object_pos(self, physics: common.Physics) -> np.ndarray:
        return physics.body_pos(self._object)

    def target_pos(self, physics: common.Physics) -> np.ndarray:
        return self._target

    def entities(self, physics: common.Physics) -> list:
        """cube, brick (whichever is named in the instruction)."""
        return [(s, self._colours[s], physics.body_pos(s)) for s in SHAPES]

    def success(self, physics: common.Physics) -> bool:
        return bool(self.object_pos(physics)[2] > LIFT_HEIGHT)


def load(seed=None, image_size: int | None = None, obs: str = "privileged") -> common.Environment:
    task = Lift(random=seed, image_size=image_size, obs=obs)
    return common.build(common.load_physics("lift.xml"), task)
