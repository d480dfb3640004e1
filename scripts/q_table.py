"""Q of every action bin at one state of a policy's own rollout: where does its ranking fail?

    python scripts/q_table.py runs/x --episode 77 --step 5 [--seed 5000] [--task pick_place]

Rolls the run's exported policy (RUN/policy) for STEP steps in episode EPISODE of `qtransformer
eval --seed SEED`, then prints, for each action dimension i, Q(s, a_0..a_{i-1}, a_i = k) for
every bin k, the prefix a_0..a_{i-1} being the scripted expert's bins at that state (the
Q-Transformer reads dimension i after the first i). The expert's action and bins are printed
first. A row with value on one bin only says the network has learnt "the data's bin, nothing
else"; a row that falls off smoothly around its peak ranks near actions as near (docs/stall.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    from qtransformer.commands import quiet

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a train --workdir (its policy/ and checkpoints)")
    parser.add_argument("--episode", type=int, default=0)
    parser.add_argument("--step", type=int, default=0)
    parser.add_argument("--seed", type=int, default=5000)
    parser.add_argument("--task", default="pick_place")
    args = parser.parse_args(argv)
    quiet.silence_libraries()
    import tensorflow as tf

    from qtransformer import sim_envs
    from qtransformer.datasets import read_meta
    from qtransformer.eval import rollout
    from qtransformer.eval.diagnose import recorded_spec, restore_agent
    from qtransformer.model.tokenizer import ActionTokenizer
    from qtransformer.sim_envs import expert
    from qtransformer.training.config import TrainConfig

    policy = rollout.load_policy(str(args.run / "policy"))
    act = rollout.tf_policy_actor(policy, lambda envs: [e.task.language_instruction for e in envs])
    seed = rollout.episode_seed(args.seed, args.task, args.episode)
    env = sim_envs.make(args.task, seed=seed)
    ts = env.reset()
    for _ in range(args.step):
        if ts.last():
            raise SystemExit(f"episode {args.episode} ended before step {args.step}")
        ts = env.step(act([env], [ts])[0])
    state = env.task.privileged_state(env.physics).astype(np.float64)
    config = TrainConfig.from_file(args.run / "config.json")
    if config.loss == "bc" or config.data.history > 1:
        raise SystemExit(f"{args.run}: q_table reads Q-learners without history; loss "
                         f"{config.loss!r}, history {config.data.history}")  # fmt: skip
    meta = read_meta(recorded_spec(args.run)["dataset"])
    agent, step = restore_agent(args.run, meta, config)
    tokenizer = ActionTokenizer(meta.action_low, meta.action_high, config.data.action_bins)
    action = expert.clean_action(state)
    bins = tokenizer.tokenize(action[np.newaxis])
    obs = {
        "state": tf.constant(np.asarray(ts.observation["state"], np.float32)[np.newaxis]),
        "instruction": tf.constant([env.task.language_instruction]),
    }
    q = agent.q_values(agent.q_network((obs, bins), training=False)[0]).numpy()[0]
    np.set_printoptions(precision=2, suppress=True, linewidth=200)
    print(f"{args.run} (step {step}), episode {args.episode}, state at step {args.step}, "
          f"phase {expert.phase_of(state)}")  # fmt: skip
    print(f"expert action {np.round(action, 2)}, bins {bins.numpy()[0]}")
    for i, row in enumerate(q):
        print(f"  dim {i}: argmax {int(row.argmax()):>2}  Q {row}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
