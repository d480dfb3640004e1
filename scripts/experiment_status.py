"""Status of a cached `qtransformer experiment` run: one line per finished run.

    python scripts/experiment_status.py eval/results/pick_place_runs

Prints, for every cached run JSON (tuning runs on VALIDATION seeds, test runs on TEST seeds),
the method, its hyperparameters, the training seed and the success at each evaluated step.
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "eval/results/pick_place_runs"))
