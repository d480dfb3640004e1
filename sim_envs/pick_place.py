"""pick_place: put the named object in the bowl, then let go.

Objects: a 4 cm cube and a 6 x 4 x 4 cm brick (long side along x), axis-aligned.

The bowl is a square tray (inner half-width 6 cm, 1.5 cm walls) of another colour; the other
object is a distractor. Success: the object's centre is within 5 cm (per axis) of the bowl centre,
it rests low (centre below 4 cm, i.e. on the tray floor, not held up) and the fingers are open.
Objects start outside the bowl, so an episode never begins in success.
"""

from __future__ import annotations

import numpy as np

from qtransformer.sim_envs import common

SHAPES = ("cube", "brick")
ZONE_HALF = 0.05
REST_HEIGHT = 0.024  # object centre resting on the 4 mm tray floor


class PickPlace(common.GripperTask):
    """Put the object of a random shape and colour in the bowl of another colour."""

    def _init_scene(self, physics: common.Physics) -> None:
        shape, other = SHAPES if self.random.rand() < 0.5 else SHAPES[::-1]
        colour, bowl_colour, other_colour = self.random.choice(
            list(common.COLORS), size=3, replace=False
        )
        bowl_xy = self.random.uniform(-0.08, 0.08, size=2)
        obj_xy = common.sample_xy(self.random, -0.15, 0.15, far_from_box=[bowl_xy], box_dist=0.1)
        other_xy = common.sample_xy(
            self.random, -0.15, 0.15, far_from=[obj_xy], far_from_box=[bowl_xy], box_dist=0.1
        )
        physics.data.mocap_pos[1] = [*bowl_xy, 0.0]
        physics.set_free_body(shape, np.array([*obj_xy, common.HALF]))
        physics.set_free_body(other, np.array([*other_xy, common.HALF]))
        physics.set_rgba([shape], common.COLORS[colour])
        physics.set_rgba([other], common.COLORS[other_colour])
        walls = ["bowl_floor"] + [f"bowl_wall_{s}" for s in ("px", "nx", "py", "ny")]
        physics.set_rgba(walls, common.COLORS[bowl_colour])
        self._object = shape
        self._target = np.array([*bowl_xy, REST_HEIGHT])
        self._colours = {shape: colour, other: other_colour, "bowl": bowl_colour}
        self.language_instruction = f"put the {colour} {shape} in the {bowl_colour} bowl"

    def object_pos(self, physics: common.Physics) -> np.ndarray:
        return physics.body_pos(self._object)

    def target_pos(self, physics: common.Physics) -> np.ndarray:
        return self._target

    def entities(self, physics: common.Physics) -> list:
        """cube, brick, bowl (whichever is named in the instruction)."""
        bowl = np.array([*physics.data.mocap_pos[1][:2], 0.0])
        shapes = [(s, self._colours[s], physics.body_pos(s)) for s in SHAPES]
        return [*shapes, ("bowl", self._colours["bowl"], bowl)]

    def success(self, physics: common.Physics) -> bool:
        offset = self.object_pos(physics) - self._target
        inside = np.all(np.abs(offset[:2]) < ZONE_HALF)
        return bool(inside and offset[2] < 0.016 and self.released(physics))


def load(seed=None, image_size: int | None = None, obs: str = "privileged") -> common.Environment:
    task = PickPlace(random=seed, image_size=image_size, obs=obs)
    return common.build(common.load_physics("pick_place.xml"), task)
