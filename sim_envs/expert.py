"""A scripted expert for every task, reading only the 16-d privileged state, with knobs to fail.

The same state machine solves lift, pick_place and stack because the state names the object and
where it should go (`common` documents the layout):

  approach  move above the object (5 cm over its centre), fingers open
  descend   lower the grip point to the object centre
  grasp     close the fingers, until they stop on the object
  carry     rise to `CARRY_HEIGHT`, then move over the target (lift succeeds on the way up)
  place     lower the object until its centre is 1.5 cm above the target
  release   open the fingers and back off upwards

The phase is a function of the current state alone (`phase_of`): the expert is Markov in the
16-d state, so a learner that sees that state can imitate it exactly (VERSION 2; version 1 held
the grasp and the release for a fixed step count, which made "stay" and "lift" labels of one
and the same state). If the object leaves the fingers while carrying, it starts again.
Motion is a proportional step toward the phase's goal: a[0:3] = clip((goal - grip) / MAX_DELTA).

Failure knobs (how Q-Transformer-style replay data looks: a few clean demos, many noisy failures):
  noise               std of Gaussian noise added to every action dimension, before clipping;
  random_action_prob  per-step probability of a uniform random action instead;
  early_release_prob  per-episode probability that the expert opens the fingers 1-5 steps into
                      carrying and then only hovers (that episode almost always fails).

Measured success of expert v3 (30 seeds each, `python` loop over make(seed=s) +
expert_policy(seed=s, noise=...)): noise 0: 30/30 on lift, pick_place and stack (mean lengths
9.1, 19.8, 16.8 steps); noise 0.3: lift 30/30, pick_place 25/30, stack 20/30 (v2, closing with
+0.3: 28/30, 21/30, 10/30; v1: pick_place 21/30 at 0.3).
"""

from __future__ import annotations

from collections.abc import Callable

import dm_env
import numpy as np

from qtransformer.sim_envs import common

HOVER = 0.05
CARRY_HEIGHT = 0.12
PLACE_CLEARANCE = 0.015
ALIGNED_XY = 0.008  # grip within this of the object (xy) counts as lined up for the descent
BETWEEN_FINGERS_XY = 0.015  # grip this close to the object's centre, at its height: close
GRASP_LIFT = 0.004  # while closing, the grip point sits this far above the object's centre
OVER_TARGET_XY = 0.01  # object within this of the target (xy) is lowered, not carried
# Closing with +0.5, not +1: the finger target (10 mm) is 1 cm inside a 4 cm object, a firm
# grasp, but Gaussian noise on a[3] below -0.5 lets go, as a loose grasp would; that is what
# makes noisy replays fail (table in the module docstring). +0.5 is a bin centre of every
# tokenizer with 4k + 1 bins (the default 17 among them), so a learner can say it exactly.
# Expert v2 closed with +0.3, which 17 bins round to +0.25, a grip too weak to carry: the v2
# expert with its actions rounded to 17 bins solved pick_place 96/100 and stack 80/100 (0.25
# unrounded: 94 and 82); v3 rounded: 100/100 on both (docs/stall.md, "The grip").
OPEN, CLOSE = -1.0, 0.5
# Recorded in every dataset's metadata ("expert_version"): 3 closes with +0.5 (above); 2 is
# the first Markov expert (every decision a function of the current state), closing with +0.3;
# 1 counted GRASP_STEPS = 3 steps of closing and RELEASE_STEPS = 3 of opening, a hidden counter
# no learner could see.
VERSION = 3
PHASES = ("approach", "descend", "grasp", "carry", "place", "release")


def _held(state: np.ndarray) -> bool:
    """Fingers closed to under 4.8 cm on something at the grip point (a 4 cm object stops them
    at about 4 cm; they get there within one closing step)."""
    gap = state[3] * common.MAX_GAP
    return bool(gap < 2 * common.HALF + 0.008 and np.linalg.norm(state[10:13]) < 0.025)


def _placed(state: np.ndarray) -> bool:
    """The object is over the target and lowered to within 6 mm of the placing height."""
    offset = -state[13:16]  # object - target
    return bool(
        np.linalg.norm(offset[:2]) < 2 * OVER_TARGET_XY
        and -0.01 < offset[2] < PLACE_CLEARANCE + 0.006
    )


def phase_of(state: np.ndarray) -> str:
    """The expert's phase, a function of the 16-d privileged state alone (no counter, no memory).

    In order: released at the target -> "release"; holding the object -> "place" when it is over
    the target, else "carry"; lined up on the object with the grip point at its centre ->
    "grasp"; lined up and below the hover height -> "descend"; otherwise "approach" (also after
    a drop: the fingers open and it starts over).
    """
    grip, obj = state[0:3], state[4:7]
    if _placed(state):
        return "release"
    if _held(state):
        return "place" if np.linalg.norm(state[13:15]) < OVER_TARGET_XY else "carry"
    off_centre = np.linalg.norm(state[10:12])
    low = grip[2] - obj[2] < 0.006 or grip[2] <= common.WORKSPACE_LOW[2] + 0.002
    if off_centre < BETWEEN_FINGERS_XY and low:
        return "grasp"  # also when a loosened grip still has the object between the fingers
    if off_centre < ALIGNED_XY and grip[2] - obj[2] < HOVER + 0.015:
        return "descend"
    return "approach"


def clean_action(state: np.ndarray, phase: str | None = None) -> np.ndarray:
    """float64[4]: the noiseless expert action in `state` (in `phase`, default phase_of(state)).

    Motion is a proportional step toward the phase's goal, a[0:3] = clip((goal - grip) /
    MAX_DELTA); a[3] is OPEN or CLOSE.
    """
    grip, obj, target = state[0:3], state[4:7], state[7:10]
    phase = phase or phase_of(state)
    if phase == "approach":
        goal, fingers = obj + [0.0, 0.0, HOVER], OPEN
    elif phase == "descend":
        goal, fingers = obj.copy(), OPEN
    elif phase == "grasp":
        # close at the object's centre, the fingertips eased off the table so they slide shut
        goal, fingers = obj + [0.0, 0.0, GRASP_LIFT], CLOSE
    elif phase == "carry":
        fingers = CLOSE
        # the grip point goes where it puts the object over the target (the object may sit off
        # centre in the fingers); rise first, then travel, so it clears the distractor and bowl
        height = max(CARRY_HEIGHT, target[2])
        above = np.array([*(grip[:2] + target[:2] - obj[:2]), height])
        goal = above if grip[2] > CARRY_HEIGHT - 0.03 else np.array([*grip[:2], height])
    elif phase == "place":
        goal, fingers = grip + (target + [0.0, 0.0, PLACE_CLEARANCE] - obj), CLOSE
    elif phase == "release":
        # open in place; once open, back off upwards
        opened = state[3] * common.MAX_GAP > 2 * common.HALF + 0.01
        goal = grip + [0.0, 0.0, common.MAX_DELTA] if opened else grip.copy()
        fingers = OPEN
    elif phase == "hover":  # the early-release failure knob: let go and hang about
        goal, fingers = np.array([*grip[:2], CARRY_HEIGHT]), OPEN
    else:
        raise ValueError(f"unknown expert phase {phase!r}; valid: {', '.join(PHASES)}, hover")
    move = np.clip((goal - grip) / common.MAX_DELTA, -1.0, 1.0)
    return np.array([*move, fingers])


class _Expert:
    def __init__(self, noise, random_action_prob, early_release_prob, seed):
        for name, value in (
            ("noise", noise),
            ("random_action_prob", random_action_prob),
            ("early_release_prob", early_release_prob),
        ):
            if not np.isfinite(value) or value < 0 or (name != "noise" and value > 1):
                bound = ">= 0" if name == "noise" else "in [0, 1]"
                raise ValueError(f"expert_policy: {name} must be {bound}; got {value!r}")
        self.noise = float(noise)
        self.random_action_prob = float(random_action_prob)
        self.early_release_prob = float(early_release_prob)
        self.rng = np.random.default_rng(seed)
        self.state_fn = lambda time_step: time_step.observation["state"]
        self._reset()

    def _reset(self) -> None:
        self.phase, self.carried = "approach", 0
        self.release_after = (
            int(self.rng.integers(1, 6)) if self.rng.random() < self.early_release_prob else None
        )

    def __call__(self, time_step: dm_env.TimeStep) -> np.ndarray:
        if time_step.first():
            self._reset()
        action = self._clean_action(np.asarray(self.state_fn(time_step), dtype=np.float64))
        if self.noise > 0:
            action = action + self.rng.normal(0.0, self.noise, size=4)
        if self.random_action_prob > 0 and self.rng.random() < self.random_action_prob:
            action = self.rng.uniform(-1.0, 1.0, size=4)
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def _clean_action(self, state: np.ndarray) -> np.ndarray:
        # The one deliberate memory: the early-release failure knob (noisy data only) counts
        # carry steps and then hovers for the rest of the episode.
        if self.phase != "hover":
            self.phase = phase_of(state)
            self.carried += self.phase == "carry"
            if self.release_after is not None and self.carried > self.release_after:
                self.phase = "hover"
        return clean_action(state, self.phase)


def expert_policy(
    env: dm_env.Environment,
    noise: float = 0.0,
    random_action_prob: float = 0.0,
    early_release_prob: float = 0.0,
    seed: int | None = None,
) -> Callable[[dm_env.TimeStep], np.ndarray]:
    """Returns `policy(time_step) -> float32[4]`, the scripted expert for `env`'s task.

    The policy reads only `time_step.observation["state"]`, so it also runs on the tf_agents
    adapter's time steps; when `env` observes in another mode than "privileged" (`objects`,
    `pixels`), it reads the privileged 16-d state from `env`'s task and physics instead: the
    demonstrator keeps its privileged access, the learner does not. It resets its internal
    phase when `time_step.first()`. `seed` seeds the noise and failure draws
    (np.random.default_rng).
    """
    spec = env.action_spec()
    if tuple(spec.shape) != (4,):
        raise ValueError(f"expert_policy needs a sim_envs environment (action (4,)); got {spec}")
    expert = _Expert(noise, random_action_prob, early_release_prob, seed)
    task = getattr(env, "task", None)
    if getattr(task, "obs", "privileged") != "privileged":
        expert.state_fn = lambda time_step: task.privileged_state(env.physics)
    return expert
