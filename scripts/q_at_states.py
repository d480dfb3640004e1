"""Does a trained Q-function rank "act now" over "wait" where it matters? Q at two states.

    python scripts/q_at_states.py runs/tail_study/truncate_hl_gauss runs/x_mse --out q.json

For 50 pick_place scenes (the initial states of `eval --seed 1000` episodes), with the
restored run's Q of the whole action (last action dimension, the agent's own `q_values`):

  start  the initial pose: Q(hold still, open = [0, 0, 0, -1]) vs Q(the expert's action);
  grasp  the first state where the expert's fingers have stopped on the object, still on the
         table: Q(stay and keep closing = [0, 0, 0, 0.3], the v1 expert's label there) vs
         Q(the expert's action, lift).

Reports the mean of each Q and the share of scenes where the expert's action scores higher
(the greedy choice between the two). Both actions are tokenised with the run's bins.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

SCENES = 50


def states(scenes: int = SCENES, seed: int = 1000):
    """{name: (states [N, 16], instructions [N], wait actions [N, 4], expert actions [N, 4])}."""
    from qtransformer import sim_envs
    from qtransformer.eval import rollout
    from qtransformer.sim_envs import expert

    out = {"start": ([], [], [], []), "grasp": ([], [], [], [])}
    for i in range(scenes):
        env = sim_envs.make("pick_place", seed=rollout.episode_seed(seed, "pick_place", i))
        policy = sim_envs.expert_policy(env, seed=0)
        ts, first = env.reset(), True
        while not ts.last():
            state = np.asarray(ts.observation["state"], np.float64)
            phase = expert.phase_of(state)
            name = "start" if first else ("grasp" if phase == "carry" else None)
            if name:
                out[name][0].append(state)
                out[name][1].append(env.task.language_instruction)
                out[name][2].append([0, 0, 0, -1.0] if first else [0, 0, 0, expert.CLOSE])
                out[name][3].append(expert.clean_action(state))
                if name == "grasp":
                    break
            first = False
            ts = env.step(policy(ts))
    return {k: tuple(np.asarray(v) for v in vals) for k, vals in out.items()}


def q_of(workdir: Path, probes: dict) -> dict:
    import tensorflow as tf

    from qtransformer.datasets import read_meta
    from qtransformer.eval.diagnose import recorded_spec, restore_agent
    from qtransformer.model import targets
    from qtransformer.model.tokenizer import ActionTokenizer
    from qtransformer.training.config import TrainConfig

    config = TrainConfig.from_file(workdir / "config.json")
    meta = read_meta(recorded_spec(workdir)["dataset"])
    agent, step = restore_agent(workdir, meta, config)
    tokenizer = ActionTokenizer(meta.action_low, meta.action_high, config.data.action_bins)
    report = {"loss": config.loss, "step": step}
    for name, (state, instruction, wait, act) in probes.items():
        obs = {"state": tf.constant(state, tf.float32), "instruction": tf.constant(instruction)}
        q = {}
        for label, action in (("wait", wait), ("expert", act)):
            bins = tokenizer.tokenize(action)
            outputs = agent.q_network((obs, bins), training=False)[0]
            q[label] = targets.taken(agent.q_values(outputs), bins).numpy()[:, -1]
        report[name] = {
            "q_wait": round(float(q["wait"].mean()), 4),
            "q_expert": round(float(q["expert"].mean()), 4),
            "expert_ranked_higher": round(float((q["expert"] > q["wait"]).mean()), 3),
            "scenes": len(state),
        }
    return report


def main(argv=None) -> int:
    from qtransformer.commands import quiet

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdirs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    quiet.silence_libraries()
    probes = states()
    reports = {}
    for workdir in args.workdirs:
        reports[str(workdir)] = rep = q_of(workdir, probes)
        for name in probes:
            r = rep[name]
            print(
                f"{workdir} ({rep['loss']}) {name}: Q(wait) {r['q_wait']:.3f}, Q(expert) "
                f"{r['q_expert']:.3f}, expert ranked higher in {r['expert_ranked_higher']:.0%}"
            )
    if args.out:
        args.out.write_text(json.dumps(reports, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
