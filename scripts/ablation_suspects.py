"""Ablations of issue 10's suspects for the HL-Gauss vs MSE gap, one change at a time.

    python scripts/ablation_suspects.py [--only NAME,NAME] [--episodes 200] [--seed 100]

Fixed before any of these runs was seen. Every run is a tuning run of `qtransformer
experiment` (eval/experiment.py `_Runner.tune`): the experiment's base config at the
configuration both Q-learners chose on validation (alpha 1, learning rate 1e-3), tuning seed
100, 8000 steps, the final policy scored on VALIDATION episodes (200 here, so differences of
~10 points are resolvable; the tuning runs used 50). Diagnostics, outside the protocol's grid:
they never feed the choice of a method's test configuration.

The suspects (issue 10, "Diagnostics"): the conservative term's cross-entropy form against
MSE's squared error; the MC lower bound under cross-entropy; the HL-Gauss smoothing (sigma);
and the data's scale (10x the episodes, same protocol, so 10x the demos and replays).

`--seed` trains the same runs with another training seed (added after the seed-100 results,
to see whether the tie of the two baselines there holds at a second seed).

Cached (and resumable) in eval/results/pick_place_suspects/<dataset>/; the 480-episode
dataset is the experiment's (runs/experiment/dataset), the 4800-episode one is collected
into runs/suspects/dataset4800 with the experiment's protocol and seed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qtransformer.eval.experiment import TUNE_SEED, _Runner

BASE = {"learning_rate": 1e-3, "alpha": 1.0}
# name -> (method, overrides of BASE, dataset episodes)
ABLATIONS = {
    "hl_gauss": ("hl_gauss", {}, 480),
    "mse": ("mse", {}, 480),
    "hl_gauss_value_conservative": ("hl_gauss", {"conservative": "value"}, 480),
    "hl_gauss_no_mc_bound": ("hl_gauss", {"mc_lower_bound": False}, 480),
    "mse_no_mc_bound": ("mse", {"mc_lower_bound": False}, 480),
    "hl_gauss_x10_data": ("hl_gauss", {}, 4800),
    "mse_x10_data": ("mse", {}, 4800),
    "hl_gauss_sigma2": ("hl_gauss", {"sigma_ratio": 2.0}, 480),
}


def dataset_for(episodes: int, out: Path) -> Path:
    if episodes == 480:
        return Path("runs/experiment/dataset")  # the experiment's, collected by `experiment`
    path = out / f"dataset{episodes}"
    if not path.exists():
        from qtransformer.datasets.collect import collect_dataset

        # The experiment's protocol (eval/experiment.py defaults), 10x the episodes.
        protocol = {"replay": "open_loop", "demo_fraction": 1 / 12, "noise": 0.3, "seed": 0}
        collect_dataset(path, tasks=("pick_place",), episodes=episodes, workers=2, **protocol)
    return path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default=",".join(ABLATIONS), help="ablation names")
    parser.add_argument("--episodes", type=int, default=200, help="validation episodes")
    parser.add_argument("--seed", type=int, default=TUNE_SEED, help="training seed (default 100)")
    parser.add_argument("--out", default="runs/suspects")
    parser.add_argument("--cache", default="eval/results/pick_place_suspects")
    args = parser.parse_args()
    out = Path(args.out)
    for name in args.only.split(","):
        method, overrides, episodes = ABLATIONS[name]
        dataset = dataset_for(episodes, out)
        cache = Path(args.cache) / f"episodes{episodes}"
        runner = _Runner.for_ablation(dataset, out / f"episodes{episodes}", cache, args.episodes)
        score = runner.tune(method, {**BASE, **overrides}, seed=args.seed)
        print(json.dumps({"ablation": name, "seed": args.seed, "validation_success": score}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
