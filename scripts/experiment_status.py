"""Status of a cached `qtransformer experiment` run: one line per finished run.

    python scripts/experiment_status.py eval/results/pick_place_runs

Prints, for every cached run JSON (tuning runs on VALIDATION seeds, test runs on TEST seeds),
the method, its hyperparameters, the training seed and the success at each evaluated step;
then, for every method with finished test runs, the summary `experiment` will report
(`eval.experiment.summarize_method`: peak and final pooled success with Wilson intervals, the
seed mean with its Student-t interval), so partial results can be read before the end.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(folder: str) -> int:
    rows = []
    for path in sorted(Path(folder).glob("*.json")):
        run = json.loads(path.read_text())
        kind = "tune (validation)" if path.name.startswith("tune_") else "test"
        points = ", ".join(f"{p['step']}: {p['successes']}/{p['episodes']}" for p in run["points"])
        rows.append(f"| {kind} | {run['method']} | {run['params']} | {run['seed']} | {points} |")
    print("| runs | method | hyperparameters | train seed | successes at step |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    print_summaries(folder)
    return 0


def print_summaries(folder: str) -> None:
    from qtransformer.eval.experiment import print_table, summarize_method

    tests: dict[str, list[dict]] = {}
    for path in sorted(Path(folder).glob("test_*.json")):
        run = json.loads(path.read_text())
        tests.setdefault(run["method"], []).append(run)
    if not tests:
        return
    print()
    methods = {
        method: {**summarize_method(runs, runs[0]["points"][-1]["episodes"]),
                 "chosen": runs[0]["params"]}
        for method, runs in tests.items()
    }  # fmt: skip
    print_table({"methods": methods})


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "eval/results/pick_place_runs"))
