"""An environment we did not write, end to end: dm_control's suite `reacher` (easy).

`make_env` is the factory `qtransformer eval --env examples.reacher:make_env` calls; running
this file records episodes from it as npz files in the layout `qtransformer convert --format
npz` reads (see docs/environment.md):

    python examples/reacher.py --out data/reacher_npz --episodes 300

Each episode runs a Jacobian-transpose reaching controller (torque = J^T k (target - finger)
- d * joint velocity) with Gaussian action noise of a scale drawn per episode from
[0, --noise], so some episodes fail. An episode ends at the first step whose reward is 1
(the finger inside the target: recorded as terminal with reward 1, the sparse convention of
our tasks) or at the 3 s time limit (150 steps: a time-out, all rewards 0). Observations
(position, to_target, velocity: 2 each) are stored as obs/<key> with T+1 rows.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

TIME_LIMIT_S = 3.0  # 150 control steps of 0.02 s
INSTRUCTION = "reach the target"


def make_env(seed: int = 0):
    """dm_control suite reacher-easy with the target placed by `seed`; a dm_env.Environment."""
    from dm_control import suite

    return suite.load("reacher", "easy", task_kwargs={"random": seed, "time_limit": TIME_LIMIT_S})


def expert_action(env, observation, gain: float = 40.0, damping: float = 0.2) -> np.ndarray:
    """float[2] torques moving the finger toward the target (Jacobian transpose)."""
    import mujoco

    model, data = env.physics.model.ptr, env.physics.data.ptr
    finger = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "finger")
    jacobian = np.zeros((3, model.nv))
    mujoco.mj_jacGeom(model, data, jacobian, None, finger)
    torque = jacobian[:2].T @ (gain * observation["to_target"]) - damping * observation["velocity"]
    return np.clip(torque, -1.0, 1.0)


def record_episode(seed: int, noise: float) -> dict:
    """One episode as npz arrays (obs/<key> [T+1, 2], actions [T, 2], rewards, terminals [T])."""
    env = make_env(seed)
    rng = np.random.default_rng(seed)
    ts = env.reset()
    observations, actions, rewards = [dict(ts.observation)], [], []
    success = False
    while not ts.last():
        action = expert_action(env, ts.observation) + rng.normal(0.0, noise, 2)
        action = np.clip(action, -1.0, 1.0)
        ts = env.step(action)
        observations.append(dict(ts.observation))
        actions.append(action)
        success = ts.reward >= 1.0
        rewards.append(float(success))
        if success:
            break
    terminals = np.zeros(len(actions), bool)
    terminals[-1] = success
    arrays = {f"obs/{k}": np.stack([o[k] for o in observations]) for k in observations[0]}
    arrays.update(
        actions=np.asarray(actions, np.float32), rewards=np.asarray(rewards, np.float32),
        terminals=terminals, language_instruction=INSTRUCTION, task="reacher_easy",
    )  # fmt: skip
    return arrays


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for ep<k>.npz (created)")
    parser.add_argument("--episodes", type=int, default=300, help="episodes (default: 300)")
    parser.add_argument("--noise", type=float, default=1.0, help="max action noise (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="first episode seed (default: 0)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    successes = 0
    for i in range(args.episodes):
        arrays = record_episode(args.seed + i, noise=float(rng.uniform(0.0, args.noise)))
        successes += bool(arrays["terminals"][-1])
        np.savez(out / f"ep{i:05d}.npz", **arrays)
    print(f"recorded {args.episodes} episodes ({successes} reached the target) -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
