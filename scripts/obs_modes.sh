#!/usr/bin/env bash
# Observation modes on pick_place with the papers' data protocol (open-loop noisy replays of 1/12
# clean demos): Q-Transformer + HL-Gauss and BC, default train settings, 3 seeds, 100 eval
# episodes each; then the table (Wilson 95% intervals per seed and pooled, seed-level mean).
#
#   OBS=objects scripts/obs_modes.sh          # docs/benchmark.md "Observation modes"
#   OBS=pixels scripts/obs_modes.sh           # pixels, 64x64 frames (the same page)
#
# Everything goes under OUT (default runs/obs_<OBS>); finished runs and reports are reused.
set -euo pipefail
OBS=${OBS:-objects}
OUT=${OUT:-runs/obs_${OBS}}
EPISODES=${EPISODES:-480}
NOISE=${NOISE:-0.3}
SEEDS=${SEEDS:-"0 1 2"}
LOSSES=${LOSSES:-"hl_gauss bc"}
STEPS_FLAG=${STEPS:+--steps $STEPS}

[ -d "$OUT/dataset" ] || qtransformer collect --task pick_place --obs "$OBS" --replay open_loop \
  --episodes "$EPISODES" --noise "$NOISE" --seed 0 --out "$OUT/dataset" --no-progress
for loss in $LOSSES; do
  for seed in $SEEDS; do
    run="$OUT/${loss}_seed${seed}"
    [ -f "$run/eval.json" ] && continue
    # train resumes from the run's last checkpoint (and returns at once if it is finished)
    qtransformer train --dataset "$OUT/dataset" --workdir "$run" \
      --loss "$loss" --seed "$seed" $STEPS_FLAG --no-progress
    qtransformer eval --policy "$run/policy" --task pick_place \
      --episodes 100 --seed 1000 --report "$run/eval.json" --no-progress
  done
done
python - "$OUT" $LOSSES <<'PY'
import json, sys
from pathlib import Path
from qtransformer.eval.metrics import wilson_interval
out = Path(sys.argv[1])
print("| method | per seed (Wilson 95%) | pooled success [95% CI] | seed-level mean |")
print("|---|---|---|---|")
for loss in sys.argv[2:]:
    reports = [json.loads(p.read_text()) for p in sorted(out.glob(f"{loss}_seed*/eval.json"))]
    k, n = sum(r["successes"] for r in reports), sum(r["episodes"] for r in reports)
    lo, hi = wilson_interval(k, n)
    seeds = ", ".join(
        f"{r['success_rate']:.2f} [{r['success_ci95'][0]:.2f}, {r['success_ci95'][1]:.2f}]"
        for r in reports
    )
    mean = sum(r["success_rate"] for r in reports) / max(1, len(reports))
    print(f"| {loss} | {seeds} | {k}/{n} = {k / n:.3f} [{lo:.3f}, {hi:.3f}] | {mean:.3f} |")
PY
