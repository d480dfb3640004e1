#!/usr/bin/env bash
# The imitation ceiling: BC on N clean expert demos (--demo-fraction 1), 100 evaluation episodes
# at eval seed 5000, for each task and N; then the success table (Wilson 95% intervals).
#
#   scripts/bc_ceiling.sh                                  # pick_place, lift, stack at 40 demos
#   TASKS=pick_place DEMOS="10 40 100 400" scripts/bc_ceiling.sh   # the curve vs demos
#   LOSSES="bc hl_gauss" scripts/bc_ceiling.sh             # HL-Gauss on the same clean demos
#
# Everything goes under OUT (default runs/bc_ceiling); finished runs and reports are reused.
set -euo pipefail
OUT=${OUT:-runs/bc_ceiling}
TASKS=${TASKS:-"pick_place lift stack"}
DEMOS=${DEMOS:-40}
LOSSES=${LOSSES:-bc}
SEED=${SEED:-0}
HISTORY_FLAG=${HISTORY:+--history $HISTORY}
for task in $TASKS; do
  for n in $DEMOS; do
    data="$OUT/data_${task}_${n}"
    [ -f "$data/metadata.json" ] || qtransformer collect --task "$task" --episodes "$n" \
      --demo-fraction 1 --seed 7 --out "$data" --overwrite --no-progress
    for loss in $LOSSES; do
      run="$OUT/${task}_${n}_${loss}_seed${SEED}${HISTORY:+_h$HISTORY}"
      [ -f "$run/eval.json" ] && continue
      qtransformer train --dataset "$data" --workdir "$run" --loss "$loss" --seed "$SEED" \
        $HISTORY_FLAG --no-progress
      qtransformer eval --policy "$run/policy" --task "$task" --episodes 100 --seed 5000 \
        --report "$run/eval.json" --no-progress
    done
  done
done
python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
print("| run | success [Wilson 95%] |")
print("|---|---|")
for p in sorted(Path(sys.argv[1]).glob("*/eval.json")):
    r = json.loads(p.read_text())
    lo, hi = r["success_ci95"]
    print(f"| {p.parent.name} | {r['success_rate']:.2f} [{lo:.2f}, {hi:.2f}] |")
PY
