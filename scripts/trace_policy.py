"""Roll a policy out beside the scripted expert and print both actions, step by step.

    python scripts/trace_policy.py --policy runs/x/policy --task pick_place --seed 5000 \\
        --episodes 0,2 [--every 1]

Episode i starts as episode i of `qtransformer eval --seed SEED` (same initial state). The
expert is queried on the policy's own states (it never acts); each line shows the step, the
expert's phase there, grip position and opening, object - grip, the policy's action and the
expert's clean action. Use it to see where and why a policy leaves its expert.
"""

from __future__ import annotations

import argparse

import numpy as np


def main(argv=None) -> int:
    from qtransformer.commands import quiet

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", required=True)
    parser.add_argument("--task", default="pick_place")
    parser.add_argument("--seed", type=int, default=5000)
    parser.add_argument("--episodes", default="0")
    parser.add_argument("--every", type=int, default=1, help="print every N-th step")
    args = parser.parse_args(argv)
    quiet.silence_libraries()
    from qtransformer import sim_envs
    from qtransformer.eval import rollout
    from qtransformer.sim_envs import expert

    policy = rollout.load_policy(args.policy)
    obs, image_size = rollout.observation_mode(policy)
    act = rollout.tf_policy_actor(policy, lambda envs: [e.task.language_instruction for e in envs])
    for index in [int(i) for i in args.episodes.split(",")]:
        seed = rollout.episode_seed(args.seed, args.task, index)
        env = sim_envs.make(args.task, seed=seed, image_size=image_size, obs=obs)
        ts, t = env.reset(), 0
        print(f"episode {index} ({env.task.language_instruction})")
        while not ts.last():
            state = env.task.privileged_state(env.physics).astype(np.float64)
            action = act([env], [ts])[0]
            if t % args.every == 0:
                print(
                    f"  {t:>2} {expert.phase_of(state):<8} grip {np.round(state[0:3], 3)} "
                    f"open {state[3]:.2f} obj-grip {np.round(state[10:13], 3)} "
                    f"policy {np.round(action, 2)} expert {np.round(expert.clean_action(state), 2)}"
                )
            ts, t = env.step(action), t + 1
        print(f"  -> {'success' if ts.reward else 'failure'} after {t} steps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
