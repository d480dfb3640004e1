#!/usr/bin/env bash
# The replay tail (issue 21, item 4): the demo's data protocol (pick_place, 500 episodes, 1/12
# clean demos, open-loop replays at noise 0.3, seed 0) with the replays padded with hold-still
# steps to the time limit (hold) or ending when the demo's actions run out (truncate); each
# learner trained with the defaults (8000 steps, training seed 0), 100 evaluation episodes at
# eval seed 1000; then Q of "hold still" vs the expert's action at the start pose and at the
# grasp (scripts/q_at_states.py).
#
#   scripts/tail_study.sh            # everything under runs/tail_study (cached, resumable)
set -euo pipefail
OUT=${OUT:-runs/tail_study}
LOSSES=${LOSSES:-"hl_gauss bc mse"}
for tail in hold truncate; do
  data="$OUT/data_$tail"
  [ -f "$data/metadata.json" ] || qtransformer collect --task pick_place --episodes 500 \
    --replay-tail "$tail" --seed 0 --out "$data" --overwrite --no-progress
  for loss in $LOSSES; do
    run="$OUT/${tail}_${loss}"
    [ -f "$run/eval.json" ] && continue
    qtransformer train --dataset "$data" --workdir "$run" --loss "$loss" --seed 0 --no-progress
    qtransformer eval --policy "$run/policy" --task pick_place --episodes 100 --seed 1000 \
      --report "$run/eval.json" --no-progress
  done
done
python scripts/q_at_states.py "$OUT"/*_{hl_gauss,mse} --out "$OUT/q_at_states.json"
