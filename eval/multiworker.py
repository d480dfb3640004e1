"""Multi-worker checks on one machine: 2 loopback workers against 1, in one run.

    python -m qtransformer.eval.multiworker --out mw.json          (also part of `bench`)

Trains the same model on the same dataset three times as separate processes:
- `one`: 1 worker (`--strategy default`), global batch B, seed s;
- `two`: 2 workers on 127.0.0.1 (`--strategy multi_worker`, TF_CONFIG), global batch B
  (B/2 per worker, each worker reading its half of the episodes), seed s;
- `one_seed2`: 1 worker with seed s+1, the yardstick for the loss-curve match: 2 workers
  should differ from 1 worker by no more than another seed does.
Reports samples/s of each (global batch x steps/s, from TensorBoard train/steps_per_s after
the first chunk, which includes tracing), the ratio two/one, and the loss curves
(train/loss_global every `every` steps) with their mean/max absolute differences.
On a machine with fewer cores than workers x threads the ratio shows the overhead of the
collectives and of sharing the CPU, not a speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _train_argv(dataset: Path, workdir: Path, config_path: Path, strategy: str, seed: int):
    return [
        "train", "--dataset", str(dataset), "--workdir", str(workdir), "--config",
        str(config_path), "--strategy", strategy, "--seed", str(seed), "--no-progress",
    ]  # fmt: skip


def _curves(workdir: Path) -> dict:
    from qtransformer.eval.plots import read_scalars

    tags = {}
    for series in read_scalars(workdir / "train").values():
        tags.update(series)
    return tags


def _summarise(workdir: Path, batch_size: int) -> dict:
    tags = _curves(workdir)
    rates = [v for _, v in tags.get("train/steps_per_s", [])][1:]  # first chunk traces
    loss = tags.get("train/loss_global", [])
    return {
        "samples_per_s": float(np.mean(rates)) * batch_size if rates else float("nan"),
        "loss_curve": [[int(s), float(v)] for s, v in loss],
    }


def _wait(procs, timeout_s: float, logs: Path) -> None:
    deadline = time.time() + timeout_s
    for i, proc in enumerate(procs):
        try:
            code = proc.wait(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired as e:
            for p in procs:
                p.kill()
            raise RuntimeError(f"worker {i} did not finish in {timeout_s:.0f} s; see {logs}") from e
        if code != 0:
            tail = (logs / f"worker{i}.log").read_text()[-2000:] if logs.is_dir() else ""
            raise RuntimeError(f"worker {i} exited with {code}: {tail}")


def compare(dataset: Path, config, out_dir: Path, timeout_s: float = 600) -> dict:
    """Run one / two / one_seed2 (see module doc); config is a TrainConfig."""
    from qtransformer.training.cluster import launch_local_workers

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config_path = out_dir / "config.json"
    config_path.write_text(config.to_json())
    env = {"CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    runs = {}
    for name, workers, seed in (("one", 1, config.seed), ("two", 2, config.seed),
                                ("one_seed2", 1, config.seed + 1)):  # fmt: skip
        workdir = out_dir / name
        strategy = "multi_worker" if workers > 1 else "default"
        argv = _train_argv(dataset, workdir, config_path, strategy, seed)
        start = time.perf_counter()
        if workers > 1:
            procs = launch_local_workers(argv, workers, env=env, logs=out_dir / f"{name}_logs")
            _wait(procs, timeout_s, out_dir / f"{name}_logs")
        else:
            result = subprocess.run(
                [sys.executable, "-m", "qtransformer", *argv],
                env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout_s,
            )  # fmt: skip
            if result.returncode != 0:
                raise RuntimeError(f"1-worker run failed: {result.stderr[-2000:]}")
        runs[name] = {"workers": workers, "seed": seed, "wall_s": time.perf_counter() - start}
        runs[name].update(_summarise(workdir, config.data.batch_size))
    return {**runs, **loss_match(runs), "samples_per_s_two_over_one": (
        runs["two"]["samples_per_s"] / runs["one"]["samples_per_s"]
    ), "global_batch": config.data.batch_size, "steps": config.steps}  # fmt: skip


def loss_match(runs: dict) -> dict:
    """Mean/max |loss difference| of two vs one and of one_seed2 vs one, at shared steps."""

    def diff(a, b):
        x, y = dict(map(tuple, runs[a]["loss_curve"])), dict(map(tuple, runs[b]["loss_curve"]))
        steps = sorted(set(x) & set(y))
        d = np.abs(np.array([x[s] for s in steps]) - np.array([y[s] for s in steps]))
        ref = np.mean([abs(x[s]) for s in steps])
        return {
            "steps_compared": len(steps),
            "mean_abs_diff": float(d.mean()),
            "max_abs_diff": float(d.max()),
            "mean_rel_diff": float(d.mean() / ref),
        }

    two, seed = diff("two", "one"), diff("one_seed2", "one")
    return {
        "two_vs_one": two,
        "seed_vs_seed": seed,
        "two_vs_one_over_seed_vs_seed": two["mean_abs_diff"] / seed["mean_abs_diff"],
    }


def bench_config(quick: bool = False):
    """A small model: the point is the overhead of the second worker, not model speed."""
    from qtransformer.training.config import TrainConfig

    steps = 40 if quick else 300
    return TrainConfig(steps=steps, summary_every=10, checkpoint_every=steps, seed=0).replace(
        batch_size=64, embed_dim=32, num_layers=1, num_heads=2, action_bins=16, value_bins=16,
        head_rank=16, shuffle_buffer=5000,
    )  # fmt: skip


def multi_worker_bench(quick: bool = False, episodes: int | None = None) -> dict:
    """Collect a pick_place dataset in a temporary folder and run `compare` on it."""
    from qtransformer.datasets.collect import collect_dataset

    episodes = episodes or (16 if quick else 100)
    with tempfile.TemporaryDirectory() as tmp:
        path = collect_dataset(Path(tmp) / "ds", episodes=episodes, seed=0, progress=False)
        result = compare(path, bench_config(quick), Path(tmp) / "runs")
    return {"episodes": episodes, **result}


def summary_line(r: dict) -> str:
    return (
        f"multi-worker (loopback, global batch {r['global_batch']}): 1 worker "
        f"{r['one']['samples_per_s']:,.0f} samples/s, 2 workers "
        f"{r['two']['samples_per_s']:,.0f} samples/s (x{r['samples_per_s_two_over_one']:.2f}); "
        f"loss |2w-1w| mean {r['two_vs_one']['mean_abs_diff']:.4f} vs seed-to-seed "
        f"{r['seed_vs_seed']['mean_abs_diff']:.4f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="multiworker.json")
    parser.add_argument("--dataset", help="RLDS dataset (default: collect pick_place)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.dataset:
        with tempfile.TemporaryDirectory() as tmp:
            result = compare(Path(args.dataset), bench_config(args.quick), Path(tmp))
    else:
        result = multi_worker_bench(args.quick)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(summary_line(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
