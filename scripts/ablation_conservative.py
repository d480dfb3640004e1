"""Ablation of issue 10's first suspect: the conservative term, HL-Gauss vs MSE at alpha 0.

    python scripts/ablation_conservative.py [--methods hl_gauss,mse]

Trains each method with the experiment's base config, its chosen learning rate (1e-3 for
both) and alpha = 0 (no conservative regulariser), tuning seed 100, 8000 steps, and scores the
final policy on the 50 VALIDATION episodes, exactly as a tuning run of `qtransformer
experiment` (eval/experiment.py `_Runner.tune`). This is a diagnostic, outside the protocol's
grid: its results never feed the choice of a method's test configuration. Cached (and
resumable) in eval/results/pick_place_ablations/; the dataset is the experiment's
(runs/experiment/dataset).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qtransformer.eval.experiment import _Runner


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--methods", default="hl_gauss,mse")
    parser.add_argument("--out", default="runs/experiment")
    parser.add_argument("--cache", default="eval/results/pick_place_ablations")
    args = parser.parse_args()
    out = Path(args.out)
    runner = _Runner.for_ablation(out / "dataset", out, Path(args.cache), val_episodes=50)
    for method in args.methods.split(","):
        score = runner.tune(method, {"learning_rate": 1e-3, "alpha": 0.0})
        print(json.dumps({"method": method, "alpha": 0.0, "validation_success": score}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
