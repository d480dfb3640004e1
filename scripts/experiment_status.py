"""Status of a cached `qtransformer experiment` run: one line per finished run.

    python scripts/experiment_status.py eval/results/pick_place_runs
    python scripts/experiment_status.py eval/results/pick_place_runs --plot runs/partial

Prints, for every cached run JSON (tuning runs on VALIDATION seeds, test runs on TEST seeds),
the method, its hyperparameters, the training seed and the success at each evaluated step;
then, for every method with finished test runs, the summary `experiment` will report
(`eval.experiment.summarize_method`: peak and final pooled success with Wilson intervals, the
seed mean with its Student-t interval), so partial results can be read before the end.
`--plot STEM` also draws the experiment's plots of what is finished (STEM.png: success vs step
and final bars; STEM_tuning.png: validation success vs each method's tuned knob).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default="eval/results/pick_place_runs")
    parser.add_argument("--plot", default=None, help="also write STEM.png and STEM_tuning.png")
    args = parser.parse_args(argv)
    runs = load_runs(args.folder)
    print("| runs | method | hyperparameters | train seed | successes at step |")
    print("|---|---|---|---|---|")
    for name, run in runs:
        kind = "tune (validation)" if name.startswith("tune_") else "test"
        points = ", ".join(f"{p['step']}: {p['successes']}/{p['episodes']}" for p in run["points"])
        print(f"| {kind} | {run['method']} | {run['params']} | {run['seed']} | {points} |")
    results = partial_results(runs)
    if results["methods"]:
        from qtransformer.eval.experiment import print_table

        print()
        print_table(results)
    if args.plot:
        from qtransformer.eval.experiment import plot_results

        plot_results(results, Path(args.plot))
        print(f"plots: {args.plot}.png, {args.plot}_tuning.png")
    return 0


def load_runs(folder: str) -> list[tuple[str, dict]]:
    """(file name, run) of every cached run JSON in `folder`, sorted by name."""
    return [(p.name, json.loads(p.read_text())) for p in sorted(Path(folder).glob("*.json"))]


def partial_results(runs: list[tuple[str, dict]]) -> dict:
    """The finished part of an experiment's results: test summaries and tuning scores."""
    from qtransformer.eval.experiment import GRID, KNOB, summarize_method

    tests: dict[str, list[dict]] = {}
    tunes: dict[str, list[dict]] = {}
    for name, run in runs:
        into = tests if name.startswith("test_") else tunes
        into.setdefault(run["method"], []).append(run)
    methods = {
        method: {**summarize_method(runs, runs[0]["points"][-1]["episodes"]),
                 "chosen": runs[0]["params"]}
        for method, runs in tests.items()
    }  # fmt: skip
    tuning = {}
    for method, runs in tunes.items():
        # the grid's order; each entry's seeds in order (the first is the tuning run)
        grid = [p for p in GRID.get(method, []) if any(r["params"] == p for r in runs)]
        scores = [
            [r["points"][-1]["success_rate"] for r in sorted(runs, key=lambda r: r["seed"])
             if r["params"] == p]
            for p in grid
        ]  # fmt: skip
        if grid:
            tuning[method] = {"knob": KNOB[method], "grid": grid,
                              "validation_success": [s[0] for s in scores],
                              "sweep": {"seeds": sorted({r["seed"] for r in runs}),
                                        "validation_success": scores}}  # fmt: skip
    return {"task": "pick_place (partial)", "methods": methods, "tuning": tuning}


if __name__ == "__main__":
    raise SystemExit(main())
