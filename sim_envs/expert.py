"""A scripted expert for every task, reading only the 16-d privileged state, with knobs to fail.

The same state machine solves lift, pick_place and stack because the state names the object and
where it should go (`common` documents the layout):

  approach  move above the object (5 cm over its centre), fingers open
  descend   lower the grip point to the object centre
  grasp     close the fingers for `GRASP_STEPS` steps
  carry     rise to `CARRY_HEIGHT`, then move over the target (lift succeeds on the way up)
  place     lower the object until its centre is 1.5 cm above the target
  release   open the fingers and back off upwards

If the object leaves the fingers while carrying or placing, it starts again from approach.
Motion is a proportional step toward the phase's goal: a[0:3] = clip((goal - grip) / MAX_DELTA).

Failure knobs (how Q-Transformer-style replay data looks: a few clean demos, many noisy failures):
  noise               std of Gaussian noise added to every action dimension, before clipping;
  random_action_prob  per-step probability of a uniform random action instead;
  early_release_prob  per-episode probability that the expert opens the fingers 1-5 steps into
                      carrying and then only hovers (that episode almost always fails).

Measured pick_place success vs noise (30 seeds each, `python` loop over make(seed=s) +
expert_policy(seed=s)): 0.0: 30/30, 0.2: 26/30, 0.3: 21/30, 0.4: 10/30, 0.5: 8/30, 0.6: 4/30,
0.8: 4/30. Mean episode length at noise 0: 22 steps (lift 11, stack 19).
"""

from __future__ import annotations

from collections.abc import Callable

import dm_env
import numpy as np

from qtransformer.sim_envs import common

HOVER = 0.05
CARRY_HEIGHT = 0.12
GRASP_STEPS = 3
PLACE_CLEARANCE = 0.015
RELEASE_STEPS = 3
# Closing with +0.3, not +1: the finger target (14 mm) is still 5.5 mm inside a 4 cm object
# (1.6 N per finger holds it easily), but Gaussian noise on a[3] below -0.3 lets go, as a loose
# grasp would; that is what makes noisy replays fail (table in the module docstring).
OPEN, CLOSE = -1.0, 0.3


def _held(state: np.ndarray) -> bool:
    """Fingers closed on something about 4 cm wide, near the grip point."""
    gap = state[3] * common.MAX_GAP
    return bool(gap < 2 * common.HALF + 0.008 and np.linalg.norm(state[10:13]) < 0.025)


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
        self.phase, self.count = "approach", 0
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
        grip, obj, target = state[0:3], state[4:7], state[7:10]
        self.count += 1
        if self.phase in ("carry", "place") and not _held(state):
            self.phase, self.count = "approach", 1  # dropped it: start over
        if self.phase == "approach":
            goal, fingers = obj + [0.0, 0.0, HOVER], OPEN
            if np.linalg.norm((goal - grip)[:2]) < 0.008 and abs(goal[2] - grip[2]) < 0.015:
                self.phase, self.count = "descend", 0
        if self.phase == "descend":
            goal, fingers = obj.copy(), OPEN
            if grip[2] - obj[2] < 0.006 or grip[2] <= common.WORKSPACE_LOW[2] + 0.002:
                self.phase, self.count = "grasp", 0
        if self.phase == "grasp":
            goal, fingers = obj.copy(), CLOSE
            if self.count >= GRASP_STEPS:
                self.phase, self.count = "carry", 0
        if self.phase == "carry":
            fingers = CLOSE
            if self.release_after is not None and self.count >= self.release_after:
                self.phase = "hover"
            above = np.array([target[0], target[1], max(CARRY_HEIGHT, target[2])])
            # rise first, then travel: the object clears the distractor and the bowl walls
            goal = above if grip[2] > CARRY_HEIGHT - 0.03 else np.array([*grip[:2], above[2]])
            if np.linalg.norm((above - grip)[:2]) < 0.01 and abs(above[2] - grip[2]) < 0.02:
                self.phase, self.count = "place", 0
        if self.phase == "place":
            goal = grip + (target + [0.0, 0.0, PLACE_CLEARANCE] - obj)
            fingers = CLOSE
            if obj[2] - target[2] < PLACE_CLEARANCE + 0.006:
                self.phase, self.count = "release", 0
        if self.phase == "release":
            goal, fingers = grip.copy(), OPEN
            if self.count > RELEASE_STEPS:
                goal = grip + [0.0, 0.0, common.MAX_DELTA]
        if self.phase == "hover":
            goal, fingers = np.array([*grip[:2], CARRY_HEIGHT]), OPEN
        move = np.clip((goal - grip) / common.MAX_DELTA, -1.0, 1.0)
        return np.array([*move, fingers])


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
