"""Retrain the main run's HL-Gauss and MSE test seeds 0-2 (training only) for their TD logs.

    python scripts/main_run_td_logs.py --dataset runs/round2/dataset --out runs/round2/td_logs
    python scripts/scaling_report.py --main-runs runs/round2/td_logs ...

scripts/scaling_report.py reads each size's TD error and TD loss from the runs' TensorBoard
logs. The 64x2 point is round two's main run, whose run folders did not survive an earlier
session (only the cached curves in eval/results/pick_place_runs/ did). This trains the same
configurations again (the chosen alpha and learning rate of `--chosen-from`, the seeds, steps
and checkpoints of `experiment`) into folders named as `experiment` names them; no evaluation.
Already finished folders (a policy at the last step) are skipped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

METHODS = ("hl_gauss", "mse")


def main(argv=None) -> int:
    from qtransformer.eval.experiment import run_config, run_name
    from qtransformer.training.config import TrainConfig
    from qtransformer.training.train import train

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--chosen-from", type=Path, default=Path("eval/results/pick_place.json"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--evals", type=int, default=4)
    args = parser.parse_args(argv)
    tuning = json.loads(args.chosen_from.read_text())["tuning"]
    for method in METHODS:
        params = tuning[method]["chosen"]
        for seed in range(args.seeds):
            run_dir = args.out / run_name("test", method, params, seed)
            if (run_dir / "policies" / str(args.steps)).exists():
                continue
            every = max(1, args.steps // args.evals)  # as `experiment` checkpoints
            config = run_config(TrainConfig(), method, params, seed, args.steps, every)
            print(f"{run_dir.name}", flush=True)
            train(args.dataset, run_dir, config, progress=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
