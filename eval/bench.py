"""Benchmarks: train samples/s, action latency, sim steps/s, input pipeline rate, as JSON.

    qtransformer bench --out eval/results/bench.json

Measures, in one process so the ratios compare like with like:
- train samples/s for the default model (4 action dims) and a paper-like one (256 action
  bins, width 256, 4 layers, 8 action dims), and the factorised output head against the
  full action_bins x value_bins head (a ratio);
- the fast path (`benchmarks.fast_path`), each gain as a ratio against the old variant:
  train samples/s with s' padded to D tokens vs one token, XLA vs not, bfloat16 vs float32;
  greedy decoding latency (batch 1) and actions/s (batch 256) uncached vs key/value-cached
  vs cached + XLA with einsum kernels vs cached + XLA (the default decoder), and the
  first call's seconds (trace + XLA compile) of each;
- greedy action latency at batch 1 and batched actions/s (batch 256) of the default decoder;
- sim control steps/s per task against raw MuJoCo stepping of the same model;
- input-pipeline transitions/s on a freshly collected dataset against what training consumes.
`--quick` shrinks every measurement (a smoke test, not numbers to quote). `--decode-only`
runs the decoder comparison alone at both sizes (`benchmarks.decode_speed`, a few minutes):

    qtransformer bench --decode-only --out eval/results/bench_decode.json
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from qtransformer.commands import flags, quiet


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="bench.json", help="JSON file to write")
    parser.add_argument(
        "--steps", type=flags.positive_int, default=30, help="timed train steps per setting"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument(
        "--decode-only",
        action="store_true",
        help="only the greedy decoders (latency, actions/s, compile time) at both sizes",
    )
    parser.add_argument(
        "--no-multi-worker",
        action="store_true",
        help="skip the 2-worker loopback run against 1 worker (3 short training processes)",
    )


def run(args: argparse.Namespace) -> int:
    from qtransformer.commands.cli import CliError

    if args.steps < 1:
        raise CliError(f"--steps must be >= 1, got {args.steps}")
    quiet.hide_xla_banner()
    if args.decode_only:
        results = decode_benchmarks(quick=args.quick)
    else:
        results = run_benchmarks(steps=3 if args.quick else args.steps, quick=args.quick)
    if not (args.no_multi_worker or args.decode_only):
        results["multi_worker"] = multi_worker_section(args.quick)
    from qtransformer.eval.metrics import write_report

    write_report(results, Path(args.out))
    print_summary(results)
    print(f"wrote {args.out}")
    return 0


def run_benchmarks(steps: int, quick: bool = False) -> dict:
    from qtransformer.sim_envs import TASKS
    from qtransformer.sim_envs.bench import sim_speed
    from qtransformer.tools import benchmarks
    from qtransformer.training.config import TrainConfig

    start = time.time()
    default = TrainConfig()
    configs, dims = model_sizes(quick)
    model = {}
    for name, config in configs.items():
        # Fast path first: its "before" figures are the step and decoder as they were.
        fast = benchmarks.fast_path(config, dims[name], steps, calls=3 if quick else 30)
        heads = benchmarks.head_ratio(config, steps, action_dims=dims[name])
        model[name] = {
            **size_fields(config, dims[name]),
            "value_bins": config.model.value_bins,
            "batch_size": config.data.batch_size,
            "train_samples_per_s": heads[config.model.head],
            "train_samples_per_s_full_head": heads["full"],
            "factorised_over_full_head": heads["factorised_over_full"],
            "latency_s_batch1": fast["default_latency_s_batch1"],
            "actions_per_s_batch256": fast["default_actions_per_s_batch256"],
            "use_xla": config.use_xla,
            "xla_decoder": config.xla_decoder,
            "fast_path": fast,
        }
    sim = {task: sim_speed(task, steps=200 if quick else 2000) for task in TASKS}
    pipeline = pipeline_speed(default, episodes=8 if quick else 200, batches=5 if quick else 50)
    pipeline["train_consumes_transitions_per_s"] = model["default"]["train_samples_per_s"]
    pipeline["pipeline_over_train"] = (
        pipeline["transitions_per_s"] / pipeline["train_consumes_transitions_per_s"]
    )
    return {
        "model": model,
        "sim": sim,
        "input_pipeline": pipeline,
        "machine": machine(),
        "quick": quick,
        "wall_time_s": round(time.time() - start, 1),
    }


def model_sizes(quick: bool) -> tuple[dict, dict]:
    """({name: TrainConfig}, {name: action dims}) of the measured sizes."""
    from qtransformer.tools import benchmarks
    from qtransformer.training.config import TrainConfig

    dims = {"default": 4, "paper": benchmarks.PAPER_ACTION_DIMS}
    if quick:
        return {"default": TrainConfig().replace(embed_dim=32, num_layers=1, batch_size=16)}, dims
    return {"default": TrainConfig(), "paper": benchmarks.paper_config()}, dims


def decode_benchmarks(quick: bool = False, rounds: int = 5) -> dict:
    """Only the greedy decoder variants (`benchmarks.decode_speed`) at each size."""
    from qtransformer.tools import benchmarks

    start = time.time()
    configs, dims = model_sizes(quick)
    decode = {
        name: {
            **size_fields(config, dims[name]),
            "rounds": rounds,
            **benchmarks.decode_speed(config, dims[name], 3 if quick else 30, rounds),
        }
        for name, config in configs.items()
    }
    return {
        "decode": decode,
        "machine": machine(),
        "load_average": list(os.getloadavg()),
        "quick": quick,
        "wall_time_s": round(time.time() - start, 1),
    }


def size_fields(config, action_dims: int) -> dict:
    """The model size a benchmark entry was measured at."""
    return {
        "action_dims": action_dims,
        "action_bins": config.data.action_bins,
        "embed_dim": config.model.embed_dim,
        "num_layers": config.model.num_layers,
    }


def machine() -> dict:
    import tensorflow as tf

    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "tensorflow": tf.__version__,
    }


def pipeline_speed(config, episodes: int, batches: int) -> dict:
    """Collect a pick_place dataset in a temporary folder and time the tf.data pipeline."""
    from qtransformer.datasets.collect import collect_dataset
    from qtransformer.training.data import measure_throughput

    with tempfile.TemporaryDirectory() as tmp:
        path = collect_dataset(Path(tmp) / "ds", episodes=episodes, seed=0, progress=False)
        return {"episodes": episodes, **measure_throughput(path, config.data, batches=batches)}


def multi_worker_section(quick: bool) -> dict:
    """2 workers on loopback vs 1 worker, same global batch and seed (eval/multiworker.py)."""
    from qtransformer.eval.multiworker import multi_worker_bench

    return multi_worker_bench(quick)


def decode_line(name: str, f: dict) -> str:
    lat, thr, first = f["latency_s_batch1"], f["actions_per_s_batch256"], f["first_call_s_batch1"]
    order = ("uncached", "cached", "cached_xla_einsum", "cached_xla")
    return (
        f"decode[{name}, D={f['action_dims']}] b=1 ms: "
        + " / ".join(f"{lat[k] * 1e3:.1f}" for k in order)
        + " (uncached / cached / cached+XLA einsum kernels / cached+XLA); b=256 actions/s: "
        + " / ".join(f"{thr[k]:,.0f}" for k in order)
        + f"; default {f['default_decoder']}; first call (compile) {first['cached_xla']:.1f} s"
    )


def print_summary(results: dict) -> None:
    if "decode" in results:
        for name, f in results["decode"].items():
            print(decode_line(name, f))
        return
    if "multi_worker" in results:
        from qtransformer.eval.multiworker import summary_line

        print(summary_line(results["multi_worker"]))
    for name, m in results["model"].items():
        print(
            f"train[{name}, {m['action_bins']} bins, D={m['action_dims']}]: "
            f"{m['train_samples_per_s']:,.0f} samples/s "
            f"(factorised/full head x{m['factorised_over_full_head']:.2f}); "
            f"action latency b=1 {m['latency_s_batch1'] * 1e3:.1f} ms; "
            f"b=256 {m['actions_per_s_batch256']:,.0f} actions/s"
        )
        f = m["fast_path"]
        t = f["train_samples_per_s"]
        print(
            f"  fast path[{name}]: train before {t['padded']:,.0f}/s -> now "
            f"x{f['train_default_over_before']:.2f} (one token x"
            f"{f['train_one_token_over_padded']:.2f}, loss rewrite "
            f"x{f['train_loss_rewrite_over_before']:.2f}, XLA x{f['train_xla_over_plain']:.2f}, "
            f"bf16 x{f['train_bf16_over_float32']:.2f}, td 1 cs 1 "
            f"x{f['train_td1cs1_over_default']:.2f})"
        )
        print("  " + decode_line(name, f))
    for task, s in results["sim"].items():
        print(
            f"sim[{task}]: {s['env_steps_per_s']:,.0f} control steps/s "
            f"(raw MuJoCo {s['raw_physics_control_steps_per_s']:,.0f}, ratio {s['ratio']:.2f})"
        )
    p = results["input_pipeline"]
    print(
        f"input pipeline: {p['transitions_per_s']:,.0f} transitions/s vs training "
        f"{p['train_consumes_transitions_per_s']:,.0f}/s (x{p['pipeline_over_train']:.1f})"
    )
