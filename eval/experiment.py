"""The papers' comparison in our sim: HL-Gauss vs MSE vs two-hot vs BC on mixed-quality data.

Builds a Q-Transformer-style dataset (about 10% clean expert demos, the rest the same
behaviour replayed with action noise so that most episodes fail, sparse 0/1 reward),
trains each method at several seeds, evaluates the policy exported at every checkpoint on
the same held-out seeds, and writes one results file plus plots:

    qtransformer experiment --task pick_place --out runs/experiment \\
        --results eval/results/pick_place.json

Every finished run is stored as OUT/runs/<method>_seed<k>/curve.json, so a re-run (after a
crash or Ctrl-C) skips what is done; this also lets several processes share the work
(e.g. `--methods hl_gauss,mse` and `--methods two_hot,bc` side by side), after which one
call with every method gathers the cached runs into the results file. `--quick` is a tiny
smoke-test version of the same thing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from qtransformer.eval.metrics import write_report

METHODS = ("hl_gauss", "mse", "two_hot", "bc")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="pick_place", help="sim task (default pick_place)")
    parser.add_argument("--out", default="runs/experiment", help="work folder (resumable)")
    parser.add_argument("--results", default=None, help="results JSON (default OUT/results.json)")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma list of losses")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per method")
    parser.add_argument("--episodes", type=int, default=400, help="dataset episodes")
    parser.add_argument("--action-bins", type=int, default=None, help="bins per action dim")
    parser.add_argument("--alpha", type=float, default=None, help="conservative weight")
    parser.add_argument("--demo-fraction", type=float, default=0.1, help="clean expert demos")
    parser.add_argument("--noise", type=float, default=0.4, help="action noise of the replays")
    parser.add_argument("--steps", type=int, default=3000, help="gradient steps per run")
    parser.add_argument("--evals", type=int, default=4, help="evaluation points per run")
    parser.add_argument("--eval-episodes", type=int, default=100, help="episodes per evaluation")
    parser.add_argument("--config", default=None, help="TrainConfig JSON shared by all runs")
    parser.add_argument("--quick", action="store_true", help="tiny smoke-test sizes")


def run(args: argparse.Namespace) -> int:
    from qtransformer.cli import CliError

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise CliError(f"--methods: unknown {bad}; valid: {', '.join(METHODS)}")
    if args.seeds < 1 or args.steps < 1 or args.evals < 1 or args.eval_episodes < 1:
        raise CliError("--seeds, --steps, --evals and --eval-episodes must be >= 1")
    if args.quick:
        args.episodes, args.steps, args.evals, args.eval_episodes = 12, 20, 2, 4
    out = Path(args.out)
    results_path = Path(args.results) if args.results else out / "results.json"
    results = run_experiment(args, methods, out)
    write_report(results, results_path)
    plot_results(results, results_path.with_suffix(""))
    print_table(results)
    print(f"results: {results_path}")
    return 0


def run_experiment(args: argparse.Namespace, methods: tuple[str, ...], out: Path) -> dict:
    from qtransformer.config import TrainConfig
    from qtransformer.datasets.collect import collect_dataset

    start = time.time()
    dataset = out / "dataset"
    mix = {"episodes": args.episodes, "demo_fraction": args.demo_fraction, "task": args.task}
    mix["noise"] = args.noise
    if not dataset.exists():
        collect_dataset(
            dataset,
            tasks=(args.task,),
            episodes=args.episodes,
            demo_fraction=args.demo_fraction,
            noise=args.noise,
            seed=0,
            progress=not args.quick,
        )
    mix.update(dataset_summary(dataset))

    base = TrainConfig.from_file(args.config) if args.config else TrainConfig()
    base = base.replace(action_bins=args.action_bins, alpha=args.alpha)
    every = max(1, args.steps // args.evals)
    curves: dict[str, list[dict]] = {}
    for method in methods:
        for seed in range(args.seeds):
            config = base.replace(loss=method, seed=seed, steps=args.steps, checkpoint_every=every)
            run_dir = out / "runs" / f"{method}_seed{seed}"
            curves.setdefault(method, []).append(
                train_and_evaluate(
                    dataset, run_dir, config, args.task, args.eval_episodes, not args.quick
                )
            )
    command = (
        "qtransformer " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("qtransformer") else ""
    )
    return {
        "task": args.task,
        "command": command,
        "dataset_mix": mix,
        "train_steps": args.steps,
        "action_bins": base.data.action_bins,
        "alpha": base.alpha,
        "wall_time_s": round(time.time() - start, 1),
        "cpu_count": os.cpu_count(),
        "methods": {m: summarize_method(curves[m], args.eval_episodes) for m in methods},
    }


def train_and_evaluate(
    dataset: Path, run_dir: Path, config, task: str, episodes: int, progress: bool = True
) -> dict:
    """Train one (method, seed) and evaluate each exported checkpoint; cached in curve.json."""
    import tensorflow as tf

    from qtransformer.eval.rollout import evaluate
    from qtransformer.train import train

    curve_path = run_dir / "curve.json"
    if curve_path.exists():
        return json.loads(curve_path.read_text())
    t0 = time.time()
    train(dataset, run_dir, config, progress=progress)
    train_s = time.time() - t0
    points = []
    for policy_dir in sorted((run_dir / "policies").iterdir(), key=lambda p: int(p.name)):
        policy = tf.saved_model.load(str(policy_dir))
        # The same evaluation seeds for every method and checkpoint: paired comparison.
        report = evaluate(policy, task, episodes, seed=10_000, progress=False)
        points.append({"step": int(policy_dir.name), **_counts(report)})
    curve = {
        "loss": config.loss,
        "seed": config.seed,
        "train_s": round(train_s, 1),
        "points": points,
    }
    write_report(curve, curve_path)
    return curve


def summarize_method(curves: list[dict], episodes: int) -> dict:
    """Mean success over seeds at each step; peak and final with pooled Wilson intervals."""
    from qtransformer.eval.metrics import wilson_interval

    steps = sorted({p["step"] for c in curves for p in c["points"]})
    by_step = []
    for step in steps:
        pts = [p for c in curves for p in c["points"] if p["step"] == step]
        k, n = sum(p["successes"] for p in pts), sum(p["episodes"] for p in pts)
        by_step.append({"step": step, "success": k / n, "ci95": list(wilson_interval(k, n))})
    peak = max(by_step, key=lambda s: s["success"])
    final = by_step[-1]
    return {
        "peak_success": peak["success"],
        "peak_step": peak["step"],
        "peak_ci95": peak["ci95"],
        "final_success": final["success"],
        "final_ci95": final["ci95"],
        "seeds": len(curves),
        "episodes_per_eval": episodes,
        "curve": by_step,
        "per_seed_final": [c["points"][-1]["success_rate"] for c in curves],
        "train_s_per_seed": [c["train_s"] for c in curves],
    }


def dataset_summary(dataset: Path) -> dict:
    from qtransformer.datasets import load_dataset

    episodes, meta = load_dataset(dataset)
    sources: dict[str, list[int]] = {}
    for ep in episodes:
        md = ep["episode_metadata"]
        entry = sources.setdefault(md["source"].numpy().decode(), [0, 0])
        entry[0] += 1
        entry[1] += int(md["success"].numpy())
    return {
        "num_episodes": meta.num_episodes,
        "by_source": {s: {"episodes": n, "successes": k} for s, (n, k) in sorted(sources.items())},
    }


def plot_results(results: dict, stem: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = results["methods"]
    fig, (curve_ax, bar_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for name, m in methods.items():
        steps = [p["step"] for p in m["curve"]]
        mean = [p["success"] for p in m["curve"]]
        curve_ax.plot(steps, mean, marker="o", label=name)
        curve_ax.fill_between(
            steps, [p["ci95"][0] for p in m["curve"]], [p["ci95"][1] for p in m["curve"]], alpha=0.2
        )
    curve_ax.set(xlabel="training step", ylabel="success rate", ylim=(0, 1))
    curve_ax.set_title(f"{results['task']}: success vs step (95% Wilson)")
    curve_ax.legend()
    names = list(methods)
    finals = [methods[n]["final_success"] for n in names]
    errs = [
        [f - methods[n]["final_ci95"][0] for n, f in zip(names, finals, strict=True)],
        [methods[n]["final_ci95"][1] - f for n, f in zip(names, finals, strict=True)],
    ]
    bar_ax.bar(names, finals, yerr=errs, capsize=6, color="tab:blue")
    bar_ax.set(ylabel="final success rate", ylim=(0, 1), title="final success (95% Wilson)")
    fig.tight_layout()
    stem.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(f"{stem}.png", dpi=100)
    plt.close(fig)


def print_table(results: dict) -> None:
    print(f"{'method':<10} {'peak':>6} {'final':>6}  final 95% CI     seeds")
    for name, m in results["methods"].items():
        low, high = m["final_ci95"]
        print(
            f"{name:<10} {m['peak_success']:6.3f} {m['final_success']:6.3f}  "
            f"[{low:.3f}, {high:.3f}]  {m['seeds']}"
        )


def _counts(report: dict) -> dict:
    return {
        "successes": int(report["successes"]),
        "episodes": int(report["episodes"]),
        "success_rate": float(report["success_rate"]),
        "mean_episode_length": float(report["mean_episode_length"]),
    }
