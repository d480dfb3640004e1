"""stack: put one cube on top of another cube and let go.

Success: the top cube's centre is within 2 cm (xy) of the base cube's centre and 4 cm +- 8 mm above
it, and the fingers are open. The target in the state is where the top cube's centre should go.
"""

from __future__ import annotations

import numpy as np

from qtransformer.sim_envs import common

XY_TOLERANCE = 0.02
Z_TOLERANCE = 0.008


class Stack(common.GripperTask):
    """Stack the cube of one random colour on the cube of another."""

    def _init_scene(self, physics: common.Physics) -> None:
        top_colour, base_colour = self.random.choice(list(common.COLORS), size=2, replace=False)
        top_xy = common.sample_xy(self.random, -0.12, 0.12)
        base_xy = common.sample_xy(self.random, -0.12, 0.12, far_from=[top_xy], min_dist=0.1)
        physics.set_free_body("top_cube", np.array([*top_xy, common.HALF]))
        physics.set_free_body("base_cube", np.array([*base_xy, common.HALF]))
        physics.set_rgba(["top_cube"], common.COLORS[top_colour])
        physics.set_rgba(["base_cube"], common.COLORS[base_colour])
        self._colours = {"top_cube": top_colour, "base_cube": base_colour}
        self.language_instruction = f"stack the {top_colour} cube on the {base_colour} cube"

    def object_pos(self, physics: common.Physics) -> np.ndarray:
        return physics.body_pos("top_cube")

    def target_pos(self, physics: common.Physics) -> np.ndarray:
        return physics.body_pos("base_cube") + np.array([0.0, 0.0, 2 * common.HALF])

    def entities(self, physics: common.Physics) -> list:
        """The two cubes in colour order (common.COLORS), so not by which one is on top."""
        rank = list(common.COLORS).index
        order = sorted(self._colours, key=lambda body: rank(self._colours[body]))
        return [("cube", self._colours[b], physics.body_pos(b)) for b in order]

    def success(self, physics: common.Physics) -> bool:
        offset = self.object_pos(physics) - self.target_pos(physics)
        aligned = np.linalg.norm(offset[:2]) < XY_TOLERANCE and abs(offset[2]) < Z_TOLERANCE
        return bool(aligned and self.released(physics))


def load(seed=None, image_size: int | None = None, obs: str = "privileged") -> common.Environment:
    task = Stack(random=seed, image_size=image_size, obs=obs)
    return common.build(common.load_physics("stack.xml"), task)
