"""Pixels-mode cost on this machine: train samples/s and greedy action latency at 64x64.

    python scripts/pixels_speed.py [--size 64] [--batch 128] [--steps 20] [--shift 4]

Same network and agent as `qtransformer train` on a `collect --obs pixels` dataset (state =
4-d proprioception, image uint8[S, S, 3], instruction), on synthetic batches; prints JSON.
"""

import argparse
import json
import time

import numpy as np
import tensorflow as tf
from tf_agents.trajectories import time_step as ts

from qtransformer.model.agent import QTransformerAgent
from qtransformer.model.network import word_vocabulary
from qtransformer.tools import benchmarks
from qtransformer.training.config import TrainConfig


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--shift", type=int, default=4)
    args = parser.parse_args()
    config = TrainConfig().replace(batch_size=args.batch, image_shift=args.shift)
    time_step_spec, action_spec = benchmarks.specs(state_dim=4)
    image = tf.TensorSpec([args.size, args.size, 3], tf.uint8, name="image")
    time_step_spec = ts.time_step_spec({**time_step_spec.observation, "image": image})
    vocabulary = word_vocabulary(benchmarks.INSTRUCTIONS)
    agent = QTransformerAgent(time_step_spec, action_spec, config, vocabulary)
    agent.initialize()
    rng = np.random.default_rng(0)
    batch = benchmarks.synthetic_batch(args.batch, config.data.action_bins, state_dim=4)
    for key in ("observation", "next_observation"):
        frames = rng.integers(0, 256, (args.batch, args.size, args.size, 3), dtype=np.uint8)
        batch[key]["image"] = tf.constant(frames)
    train = tf.function(agent.train)
    train(batch)
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = train(batch).loss
    loss.numpy()
    samples_per_s = args.steps * args.batch / (time.perf_counter() - start)

    one = {k: v[:1] for k, v in batch["observation"].items()}
    step = ts.restart(one, batch_size=1)
    act = tf.function(agent.policy.action)
    act(step)
    calls, start = 30, time.perf_counter()
    for _ in range(calls):
        act(step).action.numpy()
    latency = (time.perf_counter() - start) / calls
    print(json.dumps({
        "image_size": args.size, "batch_size": args.batch, "image_shift": args.shift,
        "train_samples_per_s": round(samples_per_s, 1),
        "train_steps_per_s": round(samples_per_s / args.batch, 2),
        "greedy_action_latency_ms": round(1000 * latency, 2),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
