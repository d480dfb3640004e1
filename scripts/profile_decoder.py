"""Where the batch-1 latency of the default (cached + XLA) greedy decoder goes.

    python scripts/profile_decoder.py [--size paper|default] [--calls 40] [--rounds 7]

Times, interleaved in one process (docs/performance.md, "The XLA decoder"):
- `action`: the whole policy call under tf.function, as `qtransformer bench` measures it;
- `decoder`: the XLA-compiled numeric part alone (observation token + D steps + heads);
- `trunk`: the observation token and the D x layers one-token block steps, no head;
- `heads`: the observation token and D final LayerNorm + head + expected value + argmax;
- `instruction`: the string lookup and word embedding (outside XLA);
- `empty_call`: a tf.function that adds 1 to a [1, E] tensor (the call overhead alone).
Each is a median over `rounds` of `calls` calls, as wall and process CPU seconds.
"""

from __future__ import annotations

import argparse

import tensorflow as tf
from tf_agents.trajectories import time_step as ts

from qtransformer.tools import benchmarks
from qtransformer.training.config import TrainConfig


def parts(size: str) -> dict:
    """{name: fn() -> tensor} of the pieces listed in the module docstring."""
    config = benchmarks.paper_config() if size == "paper" else TrainConfig()
    dims = benchmarks.PAPER_ACTION_DIMS if size == "paper" else 4
    policy = benchmarks.make_agent(config, dims).policy  # the default: XLA decoder
    net = policy._q_network
    obs = benchmarks.synthetic_batch(1, config.data.action_bins, action_dims=dims)
    obs = obs["observation"]
    numeric, text = {"state": obs["state"]}, obs["instruction"]
    words, weights = net.instruction_vectors(text), net.decode_weights()

    def trunk(observation, words, weights):
        x = net.observation_token(observation, words=words)[:, tf.newaxis]
        cache = [None] * len(weights)
        for _ in range(dims):  # each token through every block, as decoding runs them
            for layer, (block, w) in enumerate(zip(net._blocks, weights, strict=True)):
                x, cache[layer] = block.step(x, cache[layer], w)
        return x

    def heads(observation, words):
        x = net.observation_token(observation, words=words)[:, tf.newaxis]
        return tf.stack(
            [policy._scores_argmax(net._head(net._final_ln(x + i))[:, 0]) for i in range(dims)]
        )

    xla = {"jit_compile": True, "autograph": False}
    action = tf.function(policy.action)
    step = ts.restart(obs, 1)
    greedy = tf.function(lambda o, w: policy._decode(o, w, net.decode_weights()))
    inner_trunk = tf.function(trunk, **xla)
    heads_fn = tf.function(heads, **xla)
    lookup = tf.function(net.instruction_vectors)
    empty = tf.function(lambda w: w + 1.0)
    return {
        "action": lambda: action(step).action,
        "decoder": lambda: greedy(numeric, words),
        "trunk": lambda: inner_trunk(numeric, words, weights),
        "heads": lambda: heads_fn(numeric, words),
        "instruction": lambda: lookup(text),
        "empty_call": lambda: empty(words),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("paper", "default"), default="paper")
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    fns = parts(args.size)
    for fn in fns.values():
        fn().numpy()  # trace and compile
    times = benchmarks.interleaved_wall_and_cpu(fns, args.calls, args.rounds)
    print(f"{args.size}: batch 1, median of {args.rounds} rounds x {args.calls} calls")
    for name, (wall, cpu) in times.items():
        print(f"  {name:12s} wall {wall * 1e3:7.3f} ms  cpu {cpu * 1e3:7.3f} ms")


if __name__ == "__main__":
    main()
