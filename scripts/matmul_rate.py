"""This machine's matmul rate in float32 and bfloat16, against the train step's FLOP rate.

    python scripts/matmul_rate.py [--steps 20]

Prints JSON. `matmul_gflops`: a [1024, 256] x [256, 1024] product (the shape of the
paper-like model's MLP on a batch of 128 x 8 tokens), median of 5 interleaved rounds of 50
calls per dtype. `train`: the paper-like HL-Gauss train step (batch 128, 8 action dims), its
multiply-adds counted by hand from the layer shapes (`step_flops`), and the GFLOP/s it
reaches. Their ratio says how much faster the step could get by running its matmuls faster
rather than doing less work.
"""

import argparse
import json

import tensorflow as tf

from qtransformer.tools import benchmarks


def step_flops(embed_dim: int, layers: int, rank: int, bins: int, value_bins: int, dims: int):
    """(FLOPs per transition now, before the one-token s'): matmul multiply-adds x 2.

    Per token: `layers` blocks of 8 E^2 (q, k, v, output: 4 E^2; MLP E -> 2E -> E: 4 E^2) and the
    factorised head E R + R A V. Per transition: the online pass over D tokens with its
    backward (3 D), the target pass over (s, a) (D), the target on s' (1 token; D before).
    """
    per_token = layers * 8 * embed_dim**2 + embed_dim * rank + rank * bins * value_bins
    now = (3 * dims + dims + 1) * per_token
    before = (3 * dims + dims + dims) * per_token
    return 2 * now, 2 * before


def matmul_gflops(rounds: int = 5, calls: int = 50) -> dict:
    """{dtype name: GFLOP/s} of the [1024, 256] x [256, 1024] product, dtypes interleaved."""
    fns = {}
    for dtype in (tf.float32, tf.bfloat16):
        a = tf.cast(tf.random.normal([1024, 256]), dtype)
        b = tf.cast(tf.random.normal([256, 1024]), dtype)
        fns[dtype.name] = tf.function(lambda a=a, b=b: tf.matmul(a, b))
        fns[dtype.name]()  # trace
    seconds = benchmarks.interleaved_seconds(fns, calls, rounds)
    return {name: 2 * 1024 * 256 * 1024 / s / 1e9 for name, s in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    config = benchmarks.paper_config()
    model, dims = config.model, benchmarks.PAPER_ACTION_DIMS
    now, before = step_flops(
        model.embed_dim, model.num_layers, model.head_rank, config.data.action_bins,
        model.value_bins, dims,
    )  # fmt: skip
    rates = matmul_gflops()
    samples_per_s = benchmarks.train_samples_per_s(config, args.steps, action_dims=dims)
    step_gflops = samples_per_s * now / 1e9
    print(json.dumps({
        "matmul_gflops": {k: round(v, 1) for k, v in rates.items()},
        "bfloat16_over_float32": round(rates["bfloat16"] / rates["float32"], 2),
        "train": {
            "samples_per_s": round(samples_per_s, 1),
            "mflop_per_sample": round(now / 1e6, 1),
            "mflop_per_sample_before": round(before / 1e6, 1),
            "before_over_now_flops": round(before / now, 3),
            "gflops": round(step_gflops, 1),
            "fraction_of_float32_matmul": round(step_gflops / rates["float32"], 2),
        },
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
