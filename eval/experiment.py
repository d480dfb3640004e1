"""The papers' benchmark in our sim: every baseline, tuned the same way on held-out seeds.

    qtransformer experiment --task pick_place --out runs/experiment \\
        --results eval/results/pick_place.json

Protocol of round two (fixed in this file before any round-two run; recorded in the results):

1. Data: the papers' open-loop protocol (`qtransformer.datasets.replay`) on the pipeline fixed
   by the stall study (docs/stall.md): the Markov expert (v2), replays that end as truncations
   when the demo's actions run out. 1/12 clean expert demos, every other episode an open-loop
   replay of a demo's actions with Gaussian noise 0.3, sparse 0/1 reward. `--replay
   closed_loop` gives the older, easier dataset for comparison.
2. Tuning: every method gets the same budget, the 7 configurations of `GRID[method]`: its most
   sensitive knob on a log-spaced (or, for dropout, evenly spaced) grid that brackets the
   default on both sides, at the learning rate that won round one for that method
   (`ROUND_ONE_LR`; the budget did not allow crossing with learning rates). Q-learners sweep the
   conservative weight alpha over 0.01..10: round one offered only {1, 10}, and a code review
   suspected one alpha pushes harder under cross-entropy than under MSE (measured afterwards:
   it does not, docs/conservative_weight.md). Each configuration is trained once with training seed
   `TUNE_SEED` (never used for the final runs) and scored by its final policy's success on
   `--val-episodes` episodes of the VALIDATION evaluation seeds (base `VAL_SEED`). Ties go to
   the earlier entry. `--sweep-seeds N` trains the grid again with seeds TUNE_SEED+1.. for the
   success-vs-knob plot only; the choice uses TUNE_SEED alone.
3. Test: the chosen configuration is trained with seeds 0..S-1 and every checkpoint is scored
   on `--eval-episodes` episodes of the TEST evaluation seeds (base `TEST_SEED`; disjoint from
   the validation seeds and from the dataset's seeds), the same episodes for every method.
   `--chosen-from RESULTS` skips tuning and takes each method's choice from an earlier results
   file (the model-size and data-size sweeps reuse the main run's choices).

Round one (4 configurations: learning rate {3e-4, 1e-3} x alpha {1, 10} or dropout {0, 0.1};
expert v1, hold-still replay tails) is kept in eval/results/pick_place_round1.json.

Every finished run is cached as CACHE/<run name>.json (default OUT/curves), so a re-run after a
crash or Ctrl-C skips what is done, and several processes can share the work (`--methods
hl_gauss,mse` beside `--methods bc,bc_filtered`); one call with every method then gathers the
cached runs. A run folder that another process is training is refused, naming it (its lock).
`--quick` is a tiny smoke-test version of the same thing.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path

from qtransformer.commands import flags, output_lock
from qtransformer.eval.metrics import write_report

METHODS = ("hl_gauss", "mse", "two_hot", "bc", "bc_filtered", "cql_sac")
Q_LEARNERS = ("hl_gauss", "mse", "two_hot", "c51", "mse_linear")
# TrainConfig overrides that make each method (cql_sac trains with qtransformer.baselines.cql_sac).
METHOD_CONFIG = {
    **{m: {"loss": m} for m in Q_LEARNERS},
    "bc": {"loss": "bc"},
    "bc_filtered": {"loss": "bc", "success_only": True},
    "cql_sac": {},
}
ROUND = 2
# The learning rate that won round one's tuning (eval/results/pick_place_round1.json), per method.
ROUND_ONE_LR = {**{m: 1e-3 for m in Q_LEARNERS}, "bc": 1e-3, "bc_filtered": 3e-4, "cql_sac": 3e-4}
ALPHAS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)  # half-decades: 1 (the default) in the middle
DROPOUTS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
KNOB = {**{m: "alpha" for m in Q_LEARNERS}, "bc": "dropout", "bc_filtered": "dropout",
        "cql_sac": "cql_alpha"}  # fmt: skip
_VALUES = {"alpha": ALPHAS, "dropout": DROPOUTS, "cql_alpha": ALPHAS}
GRID = {
    m: [{"learning_rate": ROUND_ONE_LR[m], knob: v} for v in _VALUES[knob]]
    for m, knob in KNOB.items()
}
TUNE_SEED = 100
VAL_SEED = 20_000
TEST_SEED = 10_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--task", default="pick_place", help="sim task (default pick_place)")
    add("--out", default="runs/experiment", help="work folder (resumable; default %(default)s)")
    add("--results", default=None, help="results JSON (default OUT/results.json)")
    add("--cache", default=None, help="folder of finished-run JSONs (default OUT/curves)")
    add("--methods", default=",".join(METHODS), help="comma list (default: all six)")
    add("--seeds", type=flags.positive_int, default=5, help="training seeds per method (default 5)")
    add("--episodes", type=flags.positive_int, default=480, help="dataset episodes (default 480)")
    add("--replay", choices=("open_loop", "closed_loop"), default="open_loop",
        help="data protocol (default open_loop, the papers')")  # fmt: skip
    add(
        "--demo-fraction", type=flags.probability, default=1 / 12, help="clean demos (default 1/12)"
    )
    add(
        "--noise",
        type=flags.nonneg_float,
        default=0.3,
        help="action noise of the replays (default 0.3)",
    )
    add(
        "--steps",
        type=flags.positive_int,
        default=8000,
        help="gradient steps per run (default 8000)",
    )
    add(
        "--evals",
        type=flags.positive_int,
        default=4,
        help="test evaluation points per run (default 4)",
    )
    add("--eval-episodes", type=flags.positive_int, default=100,
        help="test episodes per evaluation")  # fmt: skip
    add(
        "--val-episodes",
        type=flags.positive_int,
        default=50,
        help="validation episodes per tuning run",
    )
    add("--no-tune", action="store_true", help="skip the search; use each grid's first entry")
    add("--chosen-from", default=None,
        help="skip the search; use each method's choice in this earlier results JSON")  # fmt: skip
    add("--sweep-seeds", type=flags.positive_int, default=1,
        help="training seeds per grid entry for the success-vs-knob plot (default 1: the "
             "tuning run only; the choice always uses the first)")  # fmt: skip
    add("--config", default=None, help="TrainConfig JSON shared by all runs (default: none)")
    add("--quick", action="store_true", help="tiny smoke-test sizes")


def run(args: argparse.Namespace) -> int:
    from qtransformer.commands.cli import CliError

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise CliError(f"--methods: unknown {bad}; valid: {', '.join(METHODS)}")
    outputs = {
        "--out": args.out,
        "--results": args.results,
        "--cache": getattr(args, "cache", None),
    }
    flags.check_disjoint(outputs, {"--config": args.config})
    if min(args.seeds, args.steps, args.evals, args.eval_episodes, args.val_episodes) < 1:
        raise CliError("--seeds, --steps, --evals, --eval-episodes, --val-episodes must be >= 1")
    if args.quick:
        args.episodes, args.steps, args.evals = 12, 20, 2
        args.eval_episodes, args.val_episodes = 4, 4
    out = Path(args.out)
    results_path = Path(args.results) if args.results else out / "results.json"
    results = run_experiment(args, methods, out)
    write_report(results, results_path)
    plot_results(results, results_path.with_suffix(""))
    print_table(results)
    print(f"results: {results_path}")
    return 0


_RECORDED = ("expert_version", "replay_tail")


def run_experiment(args: argparse.Namespace, methods: tuple[str, ...], out: Path) -> dict:
    from qtransformer.datasets.collect import collect_dataset
    from qtransformer.datasets.rlds_io import read_meta
    from qtransformer.training.config import TrainConfig

    start = time.time()
    dataset = out / "dataset"
    if not dataset.exists():
        collect_dataset(
            dataset, tasks=(args.task,), episodes=args.episodes, replay=args.replay,
            demo_fraction=args.demo_fraction, noise=args.noise, seed=0, progress=not args.quick,
        )  # fmt: skip
    mix = dataset_summary(dataset)
    replays = mix["by_source"].get("replay") or mix["by_source"].get("noisy", {})
    protocol = {
        "replay": args.replay,
        "noise": args.noise,
        "demo_fraction": args.demo_fraction,
        "episodes": args.episodes,
        "replay_success_rate": replays.get("successes", 0) / max(1, replays.get("episodes", 0)),
        "dataset_success_rate": mix["successes"] / mix["num_episodes"],
        # the scripted expert's version and the replay tail, as the dataset recorded them
        **{k: v for k, v in read_meta(dataset).protocol.items() if k in _RECORDED},
    }
    base = TrainConfig.from_file(args.config) if args.config else TrainConfig()
    cache = Path(args.cache) if args.cache else out / "curves"
    runner = _Runner(dataset, out, cache, base, args)
    earlier = _read_choices(args.chosen_from) if args.chosen_from else {}
    summaries, tuning = {}, {}
    for method in methods:
        if method in earlier:
            chosen = earlier[method]
            tuning[method] = {"chosen": chosen, "why": f"chosen in {args.chosen_from}"}
        else:
            tuning[method] = _tune(runner, method, args)
            chosen = tuning[method]["chosen"]
        curves = [runner.test(method, chosen, seed) for seed in range(args.seeds)]
        summaries[method] = {**summarize_method(curves, args.eval_episodes), "chosen": chosen}
    for method in methods:  # extra seeds for the plot only: after every test run
        if method not in earlier and args.sweep_seeds > 1 and not args.no_tune:
            tuning[method]["sweep"] = _sweep(runner, method, tuning[method]["grid"], args)
    command = "qtransformer " + " ".join(sys.argv[1:]) if "qtransformer" in sys.argv[0] else ""
    return {
        "task": args.task,
        "command": command,
        "protocol": protocol,
        "dataset_mix": mix,
        "validation_seeds": f"rollout.episode_seed({VAL_SEED}, task, i), i < {args.val_episodes}",
        "test_seeds": f"rollout.episode_seed({TEST_SEED}, task, i), i < {args.eval_episodes}",
        "tuning_train_seed": TUNE_SEED,
        "train_seeds": list(range(args.seeds)),
        "train_steps": args.steps,
        "round": ROUND,
        "model_size": {
            "embed_dim": base.model.embed_dim,
            "num_layers": base.model.num_layers,
            "num_heads": base.model.num_heads,
        },
        "data_size": {
            "episodes": args.episodes,
            "demos": round(args.episodes * args.demo_fraction),
        },
        "base_config": json.loads(base.to_json()),
        "tuning": tuning,
        "wall_time_s": round(time.time() - start, 1),
        "cpu_count": os.cpu_count(),
        "methods": summaries,
    }


def _tune(runner: _Runner, method: str, args: argparse.Namespace) -> dict:
    """Score every grid entry (training seed TUNE_SEED) and choose the best on validation."""
    grid = GRID[method][:2] if args.quick else GRID[method]
    if args.no_tune:
        grid = grid[:1]
    scores = [runner.tune(method, params) for params in grid]
    best = max(range(len(grid)), key=lambda i: (scores[i], -i))
    return {
        "knob": KNOB[method],
        "grid": grid,
        "validation_success": scores,
        "chosen": grid[best],
        "why": "highest validation success of the final policy (ties: earlier entry)",
    }


def _sweep(runner: _Runner, method: str, grid: list[dict], args: argparse.Namespace) -> dict:
    """Validation success of each grid entry for seeds TUNE_SEED.. (the first: the tuning run)."""
    seeds = [TUNE_SEED + k for k in range(args.sweep_seeds)]
    scores = [[runner.tune(method, params, seed) for seed in seeds] for params in grid]
    return {"seeds": seeds, "validation_success": scores}


def _read_choices(path: str) -> dict[str, dict]:
    from qtransformer.commands.cli import CliError

    try:
        tuning = json.loads(Path(path).read_text())["tuning"]
        return {method: entry["chosen"] for method, entry in tuning.items()}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CliError(f"--chosen-from {path}: not a results file of `experiment` ({e})") from e


class _Runner:
    """Trains and evaluates one (method, params, seed), cached by run name."""

    def __init__(self, dataset: Path, out: Path, cache: Path, base, args):
        self.dataset, self.out, self.cache, self.base, self.args = dataset, out, cache, base, args

    @functools.cached_property
    def protocol(self) -> dict:
        """What a cached run must have been made on: the dataset's expert version and tail."""
        from qtransformer.datasets.rlds_io import read_meta

        recorded = read_meta(self.dataset).protocol
        return {k: recorded.get(k) for k in _RECORDED}

    def _cached(self, path: Path) -> dict:
        """A cached run, refused (naming the file) if it was made on another protocol."""
        curve = json.loads(path.read_text())
        if curve.get("protocol") != self.protocol:
            raise ValueError(
                f"cached run {path} was made on protocol {curve.get('protocol')} (expert "
                f"version, replay tail), the dataset {self.dataset} records {self.protocol}: "
                f"pass another --cache (or remove the file) to re-run it"
            )
        return curve

    @classmethod
    def for_ablation(cls, dataset: Path, out: Path, cache: Path, val_episodes: int) -> _Runner:
        """The tuning runner of the ablation scripts: pick_place, TrainConfig(), 8000 steps."""
        from qtransformer.training.config import TrainConfig

        cache.mkdir(parents=True, exist_ok=True)
        args = argparse.Namespace(
            task="pick_place", steps=8000, val_episodes=val_episodes, quick=False
        )
        return cls(dataset, out, cache, TrainConfig(), args)

    def tune(self, method: str, params: dict, seed: int = TUNE_SEED) -> float:
        """Validation success of the final policy (another `seed`: ablation scripts only)."""
        name = run_name("tune", method, params, seed)
        curve = self._run(name, method, params, seed, VAL_SEED, self.args.val_episodes, 1)
        return curve["points"][-1]["success_rate"]

    def test(self, method: str, params: dict, seed: int) -> dict:
        name = run_name("test", method, params, seed)
        args = self.args
        return self._run(name, method, params, seed, TEST_SEED, args.eval_episodes, args.evals)

    @output_lock.releasing  # the run folder's lock: one process per run
    def _run(self, name, method, params, seed, eval_seed, episodes, evals) -> dict:
        path = self.cache / f"{name}.json"
        if path.exists():
            return self._cached(path)
        run_dir = self.out / "runs" / name
        output_lock.acquire(run_dir, temps=output_lock.WORKDIR_TEMPS)  # another process: refused
        if path.exists():  # finished by another process meanwhile
            return self._cached(path)
        every = max(1, self.args.steps // evals)
        t0 = time.time()
        if method == "cql_sac":
            from qtransformer.baselines.cql_sac import train_cql_sac

            train_cql_sac(
                self.dataset, run_dir, steps=self.args.steps, seed=seed, checkpoint_every=every,
                progress=not self.args.quick, **params,
            )  # fmt: skip
        else:
            from qtransformer.training.train import train

            config = run_config(self.base, method, params, seed, self.args.steps, every)
            train(self.dataset, run_dir, config, progress=not self.args.quick)
        train_s = time.time() - t0
        steps = sorted(int(p.name) for p in (run_dir / "policies").iterdir())
        if evals == 1:
            steps = steps[-1:]
        points = [
            {"step": step, **evaluate_policy(run_dir / "policies" / str(step), self.args.task,
                                             episodes, eval_seed)}
            for step in steps
        ]  # fmt: skip
        curve = {"method": method, "params": params, "seed": seed, "eval_seed": eval_seed,
                 "train_s": round(train_s, 1), "points": points,
                 "protocol": self.protocol}  # fmt: skip
        write_report(curve, path)
        return curve


def run_name(kind: str, method: str, params: dict, seed: int) -> str:
    """The run's folder and cache name, e.g. test_hl_gauss_alpha10_learning_rate0.001_seed0."""
    return f"{kind}_{method}_{_tag(params)}_seed{seed}"


def run_config(base, method: str, params: dict, seed: int, steps: int, checkpoint_every: int):
    """The TrainConfig a run of `method` (not cql_sac) trains with: `base` with the method's
    loss, the tuned `params`, the training seed and the step budget."""
    return base.replace(
        **METHOD_CONFIG[method], **params, seed=seed, steps=steps,
        checkpoint_every=checkpoint_every,
    )  # fmt: skip


def _tag(params: dict) -> str:
    return "_".join(
        f"{k}{v if isinstance(v, str) else format(v, 'g')}" for k, v in sorted(params.items())
    )


def evaluate_policy(policy_dir: Path, task: str, episodes: int, seed: int) -> dict:
    import tensorflow as tf

    from qtransformer.eval.rollout import evaluate

    report = evaluate(tf.saved_model.load(str(policy_dir)), task, episodes, seed=seed,
                      progress=False)  # fmt: skip
    return {
        "successes": int(report["successes"]),
        "episodes": int(report["episodes"]),
        "success_rate": float(report["success_rate"]),
        "mean_episode_length": float(report["mean_episode_length"]),
    }


def summarize_method(curves: list[dict], episodes: int) -> dict:
    """Pooled (Wilson) and seed-level (t) summaries of one method's test curves."""
    from qtransformer.eval.metrics import t_interval, wilson_interval

    steps = sorted({p["step"] for c in curves for p in c["points"]})
    by_step = []
    for step in steps:
        pts = [p for c in curves for p in c["points"] if p["step"] == step]
        k, n = sum(p["successes"] for p in pts), sum(p["episodes"] for p in pts)
        rates = [p["success_rate"] for p in pts]
        by_step.append({"step": step, "success": k / n, "ci95": list(wilson_interval(k, n)),
                        "seed_ci95": list(t_interval(rates))})  # fmt: skip
    peak = max(by_step, key=lambda s: s["success"])
    final = by_step[-1]
    per_seed = [c["points"][-1]["success_rate"] for c in curves]
    return {
        "peak_success": peak["success"],
        "peak_step": peak["step"],
        "peak_ci95": peak["ci95"],
        "final_success": final["success"],
        "final_ci95": final["ci95"],
        "seed_mean": sum(per_seed) / len(per_seed),
        "seed_ci95": list(t_interval(per_seed)),
        "per_seed_final": per_seed,
        "seeds": len(curves),
        "episodes_per_eval": episodes,
        "curve": by_step,
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
        "successes": sum(k for _, k in sources.values()),
        "by_source": {s: {"episodes": n, "successes": k} for s, (n, k) in sorted(sources.items())},
    }


def plot_results(results: dict, stem: Path) -> None:
    """Success vs step (pooled Wilson band) and final success bars with per-seed dots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    methods = results["methods"]
    fig, (curve_ax, bar_ax) = plt.subplots(1, 2, figsize=(12, 4.2))
    for name, m in methods.items():
        steps = [p["step"] for p in m["curve"]]
        curve_ax.plot(steps, [p["success"] for p in m["curve"]], marker="o", label=name)
        low = [p["ci95"][0] for p in m["curve"]]
        curve_ax.fill_between(steps, low, [p["ci95"][1] for p in m["curve"]], alpha=0.15)
    curve_ax.set(xlabel="training step", ylabel="test success rate", ylim=(0, 1))
    curve_ax.set_title(f"{results['task']}: success vs step (pooled 95% Wilson)")
    curve_ax.legend(fontsize=8)
    names = list(methods)
    x = np.arange(len(names))
    means = [methods[n]["seed_mean"] for n in names]
    errs = np.array([[mu - methods[n]["seed_ci95"][0], methods[n]["seed_ci95"][1] - mu]
                     for n, mu in zip(names, means, strict=True)]).T  # fmt: skip
    bar_ax.bar(x, means, yerr=np.clip(errs, 0, None), capsize=6, color="tab:blue", alpha=0.6)
    for i, n in enumerate(names):
        dots = methods[n]["per_seed_final"]
        bar_ax.scatter(np.full(len(dots), i) + np.linspace(-0.15, 0.15, len(dots)), dots,
                       color="black", s=12, zorder=3)  # fmt: skip
    bar_ax.set_xticks(x, names, rotation=20)
    bar_ax.set(ylabel="final test success", ylim=(0, 1),
               title="final success: seed mean, 95% t interval, seeds as dots")  # fmt: skip
    fig.tight_layout()
    stem.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(f"{stem}.png", dpi=100)
    plt.close(fig)
    plot_tuning(results.get("tuning", {}), Path(f"{stem}_tuning.png"))


def seeds_label(counts: set[int]) -> str:
    """'3 training seeds', '1 training seed', or '1-3 training seeds' for a partial sweep."""
    lo, hi = min(counts), max(counts)
    return f"{hi if lo == hi else f'{lo}-{hi}'} training seed{'s' * (hi > 1)}"


def plot_tuning(tuning: dict, path: Path) -> None:
    """Validation success against each method's tuned knob: seed mean, seeds as dots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    by_knob: dict[str, list[str]] = {}
    for method, entry in tuning.items():
        if len(entry.get("grid", ())) > 1:
            by_knob.setdefault(entry["knob"], []).append(method)
    if not by_knob:
        return
    fig, axes = plt.subplots(1, len(by_knob), figsize=(6 * len(by_knob), 4.2), squeeze=False)
    for ax, (knob, methods) in zip(axes[0], sorted(by_knob.items()), strict=True):
        counts = set()  # training seeds per point: partial sweeps mix 1 and 3
        for method in methods:
            entry = tuning[method]
            x = [params[knob] for params in entry["grid"]]
            seeds = entry.get("sweep", {}).get("validation_success")
            seeds = seeds or [[v] for v in entry["validation_success"]]
            counts.update(len(v) for v in seeds)
            line = ax.plot(x, [np.mean(v) for v in seeds], marker="o", label=method)[0]
            for xi, values in zip(x, seeds, strict=True):
                ax.scatter([xi] * len(values), values, color=line.get_color(), s=10, alpha=0.5)
        if knob != "dropout":
            ax.set_xscale("log")
        title = f"success vs {knob} ({seeds_label(counts)}: mean, seeds as dots)"
        ax.set(xlabel=knob, ylabel="validation success", ylim=(0, 1), title=title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def print_table(results: dict) -> None:
    """One line per method of results["methods"] (summarize_method + "chosen")."""
    print(f"{'method':<12} {'seeds':>5} {'peak':>6} {'final':>6}  pooled 95%       "
          "seed mean [95% t]    final per seed                chosen")  # fmt: skip
    for name, m in results["methods"].items():
        low, high = m["final_ci95"]
        s_low, s_high = m["seed_ci95"]
        per_seed = ", ".join(f"{v:.2f}" for v in m["per_seed_final"])
        print(
            f"{name:<12} {m['seeds']:>5} {m['peak_success']:6.3f} {m['final_success']:6.3f}  "
            f"[{low:.3f}, {high:.3f}]  {m['seed_mean']:.3f} [{s_low:.3f}, {s_high:.3f}]  "
            f"{per_seed:<28}  {m['chosen']}"
        )
