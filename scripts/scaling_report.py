"""Round two's scaling axes as a table and a plot: success and TD error against model size and
data size, per loss, from the cached runs and their TensorBoard logs.

    python scripts/scaling_report.py --out eval/results/pick_place_scaling/report

Sizes: "64x2" is the main run (`--main-cache`, `--main-runs`: its seeds 0-2), the others are
the axes of scripts/round_two_scaling.sh (`--cache`/<axis>/, `--runs`/<axis>/runs/). For each
(size, method): the final success per training seed (step 8000, or 20000 on the data axis),
its seed mean with a Student-t 95% interval, the peak of the pooled curve (all as
`eval.experiment.summarize_method` computes them for the main run), and the TD error
|Q - target| and the TD loss, each the mean of the last 10 logged points of every seed's
train/ logs (TD error has the same units for every loss; TD loss does not).
Missing runs are skipped; a size with no finished seed is left out.

The claim "HL-Gauss scales with size where MSE does not" (Stop Regressing), per axis: each
method's change in final (and in peak) seed-mean success from the axis' first size to its
largest size whose seeds have all finished, and HL-Gauss's change minus MSE's, each with a 95%
percentile bootstrap that resamples every (size, method)'s seeds independently (as
scripts/round_two_claims.py does).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

MODEL_AXES = (("64x2", None), ("128x2", "w128x2"), ("128x4", "w128x4"), ("256x4", "w256x4"))
DATA_AXES = (("40 demos", None), ("200 demos", "demos200"))
METHODS = ("hl_gauss", "mse")
SEEDS = (0, 1, 2)
LAST_POINTS = 10


def _runs(cache: Path, method: str) -> dict[int, dict]:
    found = {}
    for path in sorted(cache.glob(f"test_{method}_*_seed*.json")):
        run = json.loads(path.read_text())
        if run.get("method") == method and run.get("seed") in SEEDS:
            found[run["seed"]] = {**run, "name": path.stem}
    return found


def _td(run_dir: Path) -> dict[str, float]:
    from qtransformer.eval.plots import read_scalars

    if not (run_dir / "train").is_dir():
        return {}
    tags = next(iter(read_scalars(run_dir / "train").values()), {})
    return {
        key: float(np.mean([v for _, v in tags[tag][-LAST_POINTS:]]))
        for key, tag in (("td_error", "train/td_error"), ("td_loss", "train/td_loss"))
        if tag in tags
    }


def summarize(cache: Path, runs_dir: Path, method: str) -> dict | None:
    """The row of one (size, method): None when no seed has finished."""
    runs = _runs(cache, method)
    if not runs:
        return None
    from qtransformer.eval.experiment import summarize_method

    curves = [runs[seed] for seed in sorted(runs)]
    summary = summarize_method(curves, curves[0]["points"][-1]["episodes"])
    td = [_td(runs_dir / run["name"]) for run in curves]
    row = {"seeds": sorted(runs), "final_per_seed": summary["per_seed_final"],
           "final_mean": summary["seed_mean"], "final_t95": summary["seed_ci95"],
           "peak": summary["peak_success"], "peak_step": summary["peak_step"],
           "final_step": summary["curve"][-1]["step"],
           "curve_per_seed": [[p["success_rate"] for p in c["points"]]
                              for c in curves]}  # fmt: skip
    for key in ("td_error", "td_loss"):
        values = [t[key] for t in td if key in t]
        row[key] = float(np.mean(values)) if values else None
    return row


def report(args: argparse.Namespace) -> dict:
    out: dict[str, dict] = {}
    for axis_name, axes in (("model", MODEL_AXES), ("data", DATA_AXES)):
        out[axis_name] = {}
        for size, folder in axes:
            cache = Path(args.main_cache) if folder is None else Path(args.cache) / folder
            runs = Path(args.main_runs) if folder is None else Path(args.runs) / folder / "runs"
            rows = {m: summarize(cache, runs, m) for m in METHODS}
            rows = {m: r for m, r in rows.items() if r is not None}
            if rows:
                out[axis_name][size] = rows
    return out


RESAMPLES = 10_000


def _fewest_seeds(rows: dict) -> int:
    return min(len(rows[m]["curve_per_seed"]) for m in METHODS)


def _at(curves: np.ndarray, at: str) -> float:
    """Final or peak of the mean-over-seeds curve; curves [seeds, steps]."""
    mean = curves.mean(axis=0)
    return float(mean[-1] if at == "final" else mean.max())


def scaling_claims(result: dict, seed: int = 0) -> dict:
    """{axis: {from, to, final|peak: {<method>: change [lo, hi], hl_gauss_minus_mse: [..]}}}."""
    rng = np.random.default_rng(seed)

    def resample(x: np.ndarray) -> np.ndarray:
        return x[rng.integers(0, len(x), len(x))]

    claims = {}
    for axis, sizes in result.items():
        both = [s for s in sizes if all(m in sizes[s] for m in METHODS)]
        if not both:
            continue
        # the end point: the largest size whose seeds have all finished (as many as the first's)
        full = [s for s in both[1:] if _fewest_seeds(sizes[s]) >= _fewest_seeds(sizes[both[0]])]
        if not full:
            continue
        first, last = both[0], full[-1]
        claims[axis] = {"from": first, "to": last}
        for at in ("final", "peak"):
            row, boot = {}, {}
            for m in METHODS:
                small = np.array(sizes[first][m]["curve_per_seed"])
                large = np.array(sizes[last][m]["curve_per_seed"])
                boot[m] = np.array([_at(resample(large), at) - _at(resample(small), at)
                                    for _ in range(RESAMPLES)])  # fmt: skip
                row[m] = [_at(large, at) - _at(small, at),
                          *np.percentile(boot[m], [2.5, 97.5]).tolist()]  # fmt: skip
            row["hl_gauss_minus_mse"] = [
                row["hl_gauss"][0] - row["mse"][0],
                *np.percentile(boot["hl_gauss"] - boot["mse"], [2.5, 97.5]).tolist(),
            ]
            claims[axis][at] = row
    return claims


def print_claims(claims: dict) -> None:
    print("| axis | from -> to | at | HL-Gauss change [95%] | MSE change | HL-Gauss minus MSE |")
    print("|---|---|---|---|---|---|")
    for axis, c in claims.items():
        for at in ("final", "peak"):
            r = c[at]
            cells = [f"{v[0]:+.3f} [{v[1]:+.3f}, {v[2]:+.3f}]"
                     for v in (r["hl_gauss"], r["mse"], r["hl_gauss_minus_mse"])]  # fmt: skip
            print(f"| {axis} | {c['from']} -> {c['to']} | {at} | " + " | ".join(cells) + " |")


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def print_table(result: dict) -> None:
    print(
        "| axis | size | method | seeds | final seed mean [t 95%] | peak (step) | TD error ", end=""
    )
    print("| TD loss |")
    print("|---|---|---|---|---|---|---|---|")
    for axis, sizes in result.items():
        for size, rows in sizes.items():
            for method, r in rows.items():
                low, high = r["final_t95"]
                print(f"| {axis} | {size} | {method} | {len(r['seeds'])} | {r['final_mean']:.3f} "
                      f"[{low:.3f}, {high:.3f}] | {r['peak']:.3f} ({r['peak_step']}) | "
                      f"{_fmt(r['td_error'])} | {_fmt(r['td_loss'])} |")  # fmt: skip


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 7), squeeze=False)
    for col, (axis, sizes) in enumerate(result.items()):
        labels = list(sizes)
        for method in METHODS:
            xs = [i for i, s in enumerate(labels) if method in sizes[s]]
            rows = [sizes[labels[i]][method] for i in xs]
            if not rows:
                continue
            mean = np.array([r["final_mean"] for r in rows])
            err = np.array(
                [
                    [m - r["final_t95"][0], r["final_t95"][1] - m]
                    for m, r in zip(mean, rows, strict=True)
                ]
            ).T
            axes[0][col].errorbar(xs, mean, yerr=err, marker="o", capsize=4, label=method)
            for x, r in zip(xs, rows, strict=True):
                axes[0][col].scatter(
                    [x] * len(r["final_per_seed"]), r["final_per_seed"], s=10, alpha=0.5
                )
            td = [
                (x, r["td_error"])
                for x, r in zip(xs, rows, strict=True)
                if r["td_error"] is not None
            ]
            if td:
                axes[1][col].plot(*zip(*td, strict=True), marker="o", label=method)
        for row, ylabel in ((0, "final success (seed mean, t 95%)"), (1, "TD error |Q - target|")):
            axes[row][col].set_xticks(range(len(labels)), labels)
            axes[row][col].set_ylabel(ylabel)
            axes[row][col].set_xlabel(f"{axis} size")
            axes[row][col].legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    from qtransformer.commands import quiet

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default="eval/results/pick_place_scaling")
    parser.add_argument("--runs", default="runs/scaling")
    parser.add_argument("--main-cache", default="eval/results/pick_place_runs")
    parser.add_argument("--main-runs", default="runs/round2/runs")
    parser.add_argument("--out", default=None, help="write OUT.json and OUT.png")
    args = parser.parse_args(argv)
    quiet.silence_libraries()
    result = report(args)
    print_table(result)
    claims = scaling_claims(result)
    print_claims(claims)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        out = {**result, "claims": claims}
        Path(args.out + ".json").write_text(json.dumps(out, indent=2) + "\n")
        plot(result, Path(args.out + ".png"))
        print(f"-> {args.out}.json, {args.out}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
