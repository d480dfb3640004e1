"""Throughput and latency of the Q-Transformer on synthetic batches (no dataset needed).

- `train_samples_per_s(config)`: transitions per second through the compiled train step.
- `head_ratio(config)`: train throughput of the factorised head over the full head.
- `action_latency(config)`: greedy decoding, seconds per call at batch 1 and actions/s at 256.
- `paper_config()`: a paper-like size (256 action bins); `qtransformer bench`
  (eval/bench.py) runs the above for it and for the default model.

Synthetic batches follow the training-batch contract (`qtransformer.data`): state S=16,
D=4 action dims in [-1, 1], random bins, sparse 0/1 rewards.
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

from qtransformer.config import TrainConfig

INSTRUCTIONS = ["pick up the red cube", "put the red cube in the blue bowl"]


def specs(state_dim: int = 16, action_dims: int = 4):
    """(time_step_spec, action_spec) of the policy contract with a `state` observation."""
    obs = {
        "state": tf.TensorSpec([state_dim], tf.float32, name="state"),
        "instruction": tf.TensorSpec([], tf.string, name="instruction"),
    }
    action = tensor_spec.BoundedTensorSpec([action_dims], tf.float32, -1.0, 1.0, name="action")
    return ts.time_step_spec(obs), action


def synthetic_batch(
    batch_size: int, action_bins: int, state_dim: int = 16, action_dims: int = 4, seed: int = 0
) -> dict:
    """A training batch dict (contract section 3) of random but valid values."""
    rng = np.random.default_rng(seed)

    def obs():
        text = rng.choice(INSTRUCTIONS, batch_size)
        return {
            "state": tf.constant(rng.normal(size=(batch_size, state_dim)), tf.float32),
            "instruction": tf.constant(text.astype(object)),
        }

    bins = rng.integers(0, action_bins, size=(batch_size, action_dims))
    reward = (rng.random(batch_size) < 0.1).astype(np.float32)
    return {
        "observation": obs(),
        "action": tf.constant(bins / (action_bins - 1) * 2 - 1, tf.float32),
        "action_bins": tf.constant(bins, tf.int32),
        "reward": tf.constant(reward),
        "discount": tf.constant(np.where(reward > 0, 0.0, 0.98**3), tf.float32),
        "next_observation": obs(),
        "mc_return": tf.constant(reward * rng.random(batch_size), tf.float32),
        "is_terminal": tf.constant(reward > 0),
    }


def make_agent(config: TrainConfig):
    from qtransformer.agent import QTransformerAgent
    from qtransformer.network import word_vocabulary

    time_step_spec, action_spec = specs()
    agent = QTransformerAgent(time_step_spec, action_spec, config, word_vocabulary(INSTRUCTIONS))
    agent.initialize()
    return agent


def train_samples_per_s(config: TrainConfig | None = None, steps: int = 50) -> float:
    """Transitions/s of `agent.train` under tf.function on one fixed synthetic batch."""
    config = config or TrainConfig()
    agent = make_agent(config)
    batch = synthetic_batch(config.data.batch_size, config.data.action_bins)
    train = tf.function(agent.train)
    train(batch)  # trace and warm up
    start = time.perf_counter()
    for _ in range(steps):
        loss = train(batch).loss
    loss.numpy()
    return steps * config.data.batch_size / (time.perf_counter() - start)


def head_ratio(config: TrainConfig | None = None, steps: int = 30) -> dict:
    """Train throughput with each head and factorised/full (> 1: factorised is faster)."""
    config = config or TrainConfig()
    rates = {
        head: train_samples_per_s(config.replace(head=head), steps)
        for head in ("factorised", "full")
    }
    return {**rates, "factorised_over_full": rates["factorised"] / rates["full"]}


def action_latency(config: TrainConfig | None = None, calls: int = 30) -> dict:
    """Greedy decoding: mean seconds per action at batch 1, and actions/s at batch 256."""
    config = config or TrainConfig()
    policy = make_agent(config).policy
    action = tf.function(policy.action)
    out = {}
    for batch_size in (1, 256):
        obs = synthetic_batch(batch_size, config.data.action_bins)["observation"]
        step = ts.restart(obs, batch_size)
        action(step)
        start = time.perf_counter()
        for _ in range(calls):
            result = action(step).action
        result.numpy()
        out[batch_size] = (time.perf_counter() - start) / calls
    return {"latency_s_batch1": out[1], "actions_per_s_batch256": 256 / out[256]}


def paper_config() -> TrainConfig:
    """A paper-like size: 256 action bins, wider and deeper transformer."""
    return TrainConfig().replace(action_bins=256, embed_dim=256, num_layers=4, num_heads=8)
