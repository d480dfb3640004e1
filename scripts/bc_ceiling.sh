#!/usr/bin/env bash
# The imitation ceiling: BC on N clean expert demos (--demo-fraction 1), 100 evaluation episodes
# at eval seed 5000, for each task and N; then the success table (Wilson 95% intervals).
#
#   scripts/bc_ceiling.sh                                  # pick_place, lift, stack at 40 demos
#   TASKS=pick_place DEMOS="10 40 100 400" scripts/bc_ceiling.sh   # the curve vs demos
#   LOSSES="bc hl_gauss" scripts/bc_ceiling.sh             # HL-Gauss on the same clean demos
#   FLAGS="--dropout 0.2" TAG=_d0.2 scripts/bc_ceiling.sh  # extra train flags, run-name suffix
#   EVAL_SEED=6000 scripts/bc_ceiling.sh                   # test episodes (tuning used 5000)
#
# Everything goes under OUT (default runs/bc_ceiling); finished runs and reports are reused.
set -euo pipefail
OUT=${OUT:-runs/bc_ceiling}
TASKS=${TASKS:-"pick_place lift stack"}
DEMOS=${DEMOS:-40}
LOSSES=${LOSSES:-bc}
SEED=${SEED:-0}
HISTORY_FLAG=${HISTORY:+--history $HISTORY}
FLAGS=${FLAGS:-}
TAG=${TAG:-}
EVAL_SEED=${EVAL_SEED:-5000}
for task in $TASKS; do
  for n in $DEMOS; do
    data="$OUT/data_${task}_${n}"
    [ -f "$data/metadata.json" ] || qtransformer collect --task "$task" --episodes "$n" \
      --demo-fraction 1 --seed 7 --out "$data" --overwrite --no-progress
    for loss in $LOSSES; do
      run="$OUT/${task}_${n}_${loss}_seed${SEED}${HISTORY:+_h$HISTORY}${TAG}"
      report="$run/eval_seed${EVAL_SEED}.json"
      [ -f "$report" ] && continue
      qtransformer train --dataset "$data" --workdir "$run" --loss "$loss" --seed "$SEED" \
        $HISTORY_FLAG $FLAGS --no-progress
      qtransformer eval --policy "$run/policy" --task "$task" --episodes 100 \
        --seed "$EVAL_SEED" --report "$report" --no-progress
    done
  done
done
python "$(dirname "$0")/success_table.py" "$OUT" '*/eval*.json'
