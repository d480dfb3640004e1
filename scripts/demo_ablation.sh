#!/usr/bin/env bash
# The demo's recipe with extra train flags, on the demo's own datasets (docs/benchmark.md, "The
# demo"): for each seed S, collect what `qtransformer demo --seed S` collects (500 pick_place
# episodes, the papers' protocol), train as the demo trains (learning rate 1e-3, alpha 10) plus
# FLAGS, and evaluate 50 episodes at seed S as the demo does; then the table.
#
#   FLAGS="--td-sigma 1 --conservative-sigma 1" TAG=_td1_cs1 scripts/demo_ablation.sh
#   FLAGS="" TAG=_plain scripts/demo_ablation.sh            # the demo's own recipe
#
# Everything goes under OUT (default runs/demo_ablation); finished runs are reused.
set -euo pipefail
OUT=${OUT:-runs/demo_ablation}
SEEDS=${SEEDS:-"0 1 2"}
FLAGS=${FLAGS:-}
TAG=${TAG:-}
for seed in $SEEDS; do
  data="$OUT/dataset_seed$seed"
  [ -f "$data/metadata.json" ] || qtransformer collect --task pick_place --episodes 500 \
    --seed "$seed" --out "$data" --overwrite --no-progress
  run="$OUT/seed${seed}${TAG}"
  [ -f "$run/eval.json" ] && continue
  qtransformer train --dataset "$data" --workdir "$run" --seed "$seed" --lr 0.001 --alpha 10 \
    $FLAGS --no-progress
  qtransformer eval --policy "$run/policy" --task pick_place --episodes 50 --seed "$seed" \
    --report "$run/eval.json" --no-progress
done
python "$(dirname "$0")/success_table.py" "$OUT" '*/eval.json'
