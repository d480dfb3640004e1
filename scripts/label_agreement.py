"""How often does a policy reproduce its own training labels? Per action dimension, binned by
how far the grip point is from the object in the xy plane.

    python scripts/label_agreement.py runs/bc_ceiling/data_pick_place_40 \\
        runs/bc_ceiling/pick_place_40_bc_seed0_d0.2/policy

Every step of every episode of DATASET (a privileged-state dataset) goes through the exported
policy at batch size = episode length; an action dimension agrees when the policy's bin equals
the recorded action's bin (`--bins`, the run's action bins). A policy that agrees everywhere
here but fails in rollouts fails on states the demos do not hold (generalisation, not fit).
Every step is passed as a first step, so a policy with observation history (W > 1) sees
only the current state in its window: use it on W = 1 policies.
"""

from __future__ import annotations

import argparse

import numpy as np

OFFSET_EDGES = (0.0, 0.003, 0.008, 0.015, 0.03, np.inf)  # metres, |object - grip| in xy


def main(argv=None) -> int:
    from qtransformer.commands import quiet

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("policy")
    parser.add_argument("--bins", type=int, default=17, help="the run's action bins")
    args = parser.parse_args(argv)
    quiet.silence_libraries()
    import tensorflow as tf
    from tf_agents.trajectories import time_step as ts_lib

    from qtransformer.datasets import read_episodes
    from qtransformer.eval.rollout import load_policy
    from qtransformer.model.tokenizer import ActionTokenizer

    policy = load_policy(args.policy)  # names the path if it is not an exported policy
    tokenizer = ActionTokenizer([-1.0] * 4, [1.0] * 4, args.bins)
    offsets, agree = [], []
    for episode in read_episodes(args.dataset):
        states = np.asarray(episode.states[: len(episode.actions)], np.float32)
        observation = {
            "state": tf.constant(states),
            "instruction": tf.constant([episode.instruction] * len(states)),
        }
        step = ts_lib.restart(observation, batch_size=len(states))
        actions = policy.action(step).action.numpy()
        recorded = np.asarray(episode.actions, np.float32)
        agree.append(tokenizer.tokenize(actions).numpy() == tokenizer.tokenize(recorded).numpy())
        offsets.append(np.linalg.norm(states[:, 10:12], axis=1))
    offsets, agree = np.concatenate(offsets), np.concatenate(agree)
    print(f"{len(agree)} steps; agreement per dimension {np.round(agree.mean(0), 3).tolist()}")
    print("| xy offset (cm) | steps | x, y | z | fingers |")
    print("|---|---|---|---|---|")
    for lo, hi in zip(OFFSET_EDGES[:-1], OFFSET_EDGES[1:], strict=True):
        rows = agree[(offsets >= lo) & (offsets < hi)]
        if len(rows):
            xy, z, fingers = rows[:, :2].mean(), rows[:, 2].mean(), rows[:, 3].mean()
            band = f"{100 * lo:.1f}-{100 * hi:.1f}"
            print(f"| {band} | {len(rows)} | {xy:.3f} | {z:.3f} | {fingers:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
