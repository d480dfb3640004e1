"""Observation modes of every task: what the learner sees (the scripted expert sees more).

    make("pick_place", obs="objects")                # state float32[34]
    make("pick_place", obs="pixels", image_size=64)  # state float32[4] + image uint8[64, 64, 3]

Modes (`MODES`), each with its own `state` size (`STATE_SIZES`, all distinct, so a saved policy's
state spec tells which mode it was trained in; `mode_for_state_size`):

  privileged  float32[16]: the layout in `common` (the instructed object's and the target's exact
              coordinates). The instruction is redundant and the distractor invisible.
  objects     float32[34]: proprioception (4) + `SLOTS` = 3 entity slots of `SLOT_SIZE` = 10:
                [0:3]  kind one-hot (cube, brick, bowl); all zero = empty slot
                [3:7]  colour one-hot (red, green, blue, yellow; `common.COLORS` order)
                [7:10] position, metres (bowl: its centre on the table, z = 0)
              in an order fixed by the scene, never by the instruction (pick_place: cube, brick,
              bowl; lift: cube, brick, empty; stack: the two cubes by colour order, empty), so
              only the instruction says which object to pick and where to put it.
  pixels      float32[4] proprioception + `image` uint8[S, S, 3] from the "overhead" camera
              (default S = `DEFAULT_IMAGE_SIZE` = 64) + the instruction; nothing else about the
              objects.

Proprioception, all modes: [0:3] grip point position (metres), [3] gripper opening (0..1).
"""

from __future__ import annotations

import numpy as np

from qtransformer.sim_envs import OBS_MODES, common

MODES = OBS_MODES
DEFAULT_MODE = "privileged"
DEFAULT_IMAGE_SIZE = 64
PROPRIO_SIZE = 4
KINDS = ("cube", "brick", "bowl")
SLOTS = 3
SLOT_SIZE = len(KINDS) + len(common.COLORS) + 3
STATE_SIZES = {
    "privileged": common.STATE_SIZE,
    "objects": PROPRIO_SIZE + SLOTS * SLOT_SIZE,
    "pixels": PROPRIO_SIZE,
}


def check_mode(obs: str, image_size: int | None) -> int | None:
    """Validates `obs`; returns the image size to render (pixels defaults to 64, else as given)."""
    if obs not in MODES:
        raise ValueError(f"unknown observation mode {obs!r} (--obs); valid: {', '.join(MODES)}")
    if obs == "pixels" and image_size is None:
        return DEFAULT_IMAGE_SIZE
    return image_size


def mode_for_state_size(size: int) -> str:
    """The mode whose `state` has `size` features (inverse of `STATE_SIZES`)."""
    for mode, n in STATE_SIZES.items():
        if n == size:
            return mode
    valid = ", ".join(f"{m}: {n}" for m, n in STATE_SIZES.items())
    raise ValueError(f"a state of {size} features matches no observation mode ({valid})")


def proprioception(physics) -> np.ndarray:
    """float32[4]: grip point xyz, gripper opening (finger gap / max gap)."""
    return np.array([*physics.grip_pos(), physics.gripper_gap() / common.MAX_GAP], np.float32)


def objects_state(physics, entities) -> np.ndarray:
    """float32[34] from proprioception and `entities`: [(kind, colour, xyz), ...] in slot order."""
    if len(entities) > SLOTS:
        raise ValueError(f"objects mode has {SLOTS} slots; the task lists {len(entities)}")
    slots = np.zeros((SLOTS, SLOT_SIZE), np.float32)
    colours = list(common.COLORS)
    for slot, (kind, colour, pos) in zip(slots, entities, strict=False):
        slot[KINDS.index(kind)] = 1.0
        slot[len(KINDS) + colours.index(colour)] = 1.0
        slot[-3:] = pos
    return np.concatenate([proprioception(physics), slots.reshape(-1)])
