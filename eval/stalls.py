"""Where rollouts stop making progress: still tails of failed episodes, and what was chosen there.

A failed episode *stalls* when its last `MIN_STILL` or more steps leave the gripper where it was
(grip point moved < `STILL_TOL` metres and opening changed < `STILL_TOL` in every step): the
state has become a fixed point of the policy. `eval` reports, for every stall, the step it
began, the scripted expert's phase there (`sim_envs.expert.phase_of` on the privileged state,
whatever the policy observed), the policy's action and the expert's clean action in that state:

    "stalls": {"episodes": 7, "failed": 9, "by_phase": {"carry": 6, "approach": 1},
               "examples": [{"episode": 3, "step": 9, "phase": "carry",
                             "policy_action": [0, 0, 0, 0.25], "expert_action": [0, 0, 1, 0.3]}]}

`eval` prints it under the success table; the JSON report keeps all of it.
"""

from __future__ import annotations

import collections

import numpy as np

MIN_STILL = 10
STILL_TOL = 1e-3
MAX_EXAMPLES = 5


def still_from(proprio: np.ndarray, min_still: int = MIN_STILL, tol: float = STILL_TOL):
    """First step of the still tail of a [T+1, 4] (grip xyz, opening) trajectory, or None.

    Step t is still when |proprio[t+1] - proprio[t]| < tol in every component; the tail must be
    at least `min_still` steps long. Example: positions 0, 1, 2, 2, 2 (tol 0.5, min_still 2)
    -> 2 (the steps 2->3 and 3->4 are still).
    """
    moved = np.abs(np.diff(proprio, axis=0)).max(-1) >= tol
    if len(moved) < min_still or moved[-min_still:].any():
        return None
    last_move = np.flatnonzero(moved)
    return int(last_move[-1] + 1) if len(last_move) else 0


class StallTracker:
    """Collects privileged states and actions of each episode of a rollout; see the module doc."""

    def __init__(self):
        self._states: dict[int, list] = collections.defaultdict(list)
        self._actions: dict[int, list] = collections.defaultdict(list)
        self._stalls: list[dict] = []
        self._failed = 0

    def observe(self, index: int, env) -> None:
        """Record episode `index`'s current privileged state (after reset and every step)."""
        self._states[index].append(env.task.privileged_state(env.physics))

    def act(self, index: int, action) -> None:
        self._actions[index].append(np.asarray(action, np.float32))

    def finish(self, index: int, success: bool) -> None:
        from qtransformer.sim_envs import expert

        states, actions = self._states.pop(index), self._actions.pop(index)
        if success:
            return
        self._failed += 1
        states = np.stack(states)
        start = still_from(states[:, 0:4])
        if start is None or start >= len(actions):
            return
        state = states[start].astype(np.float64)
        self._stalls.append(
            {
                "episode": index,
                "step": start,
                "phase": expert.phase_of(state),
                "policy_action": np.round(actions[start], 3).tolist(),
                "expert_action": np.round(expert.clean_action(state), 3).tolist(),
            }
        )

    def report(self) -> dict:
        stalls = sorted(self._stalls, key=lambda s: s["episode"])
        return {
            "episodes": len(stalls),
            "failed": self._failed,
            "by_phase": dict(collections.Counter(s["phase"] for s in stalls).most_common()),
            "examples": stalls[:MAX_EXAMPLES],
        }


def format_stalls(report: dict) -> str:
    """Lines for the terminal: how many failures stalled, in which phase, and one example each."""
    stalls = report.get("stalls")
    if not stalls or not stalls["failed"]:
        return ""
    phases = ", ".join(f"{p} {n}" for p, n in stalls["by_phase"].items()) or "none"
    lines = [f"stalled: {stalls['episodes']} of {stalls['failed']} failures ({phases})"]
    for ex in stalls["examples"][:3]:
        lines.append(
            f"  episode {ex['episode']} still from step {ex['step']} in {ex['phase']}: policy "
            f"{ex['policy_action']}, expert {ex['expert_action']}"
        )
    return "\n".join(lines)
