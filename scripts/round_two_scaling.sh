#!/usr/bin/env bash
# Round two's scaling axes (issue: the papers' benchmark, round two), after scripts/round_two.sh:
# HL-Gauss and MSE, each at the configuration round two chose for it on validation seeds
# (--chosen-from RESULTS), 3 training seeds, test evaluation seeds as in the main run.
#
#   model size: width x layers 128x2, 128x4, 256x4 (64x2 is the main run: its seeds 0-2);
#               256x4 runs last, after the data axis
#   data size:  200 demos at the papers' 1/12 (2400 episodes), 20000 steps (40 demos: the main
#               run, 480 episodes, 8000 steps). The budget grows with the data as ~sqrt: 5x the
#               episodes, 2.5x the steps; proportional growth (40000) did not fit the budget.
#
#   nohup scripts/round_two_scaling.sh > runs/scaling.log 2>&1 &    # start or resume
#
# Every finished run is cached under CACHE/<axis>/, so running this again resumes.
set -euo pipefail
OUT=${OUT:-runs/scaling}
CACHE=${CACHE:-eval/results/pick_place_scaling}
CHOSEN=${CHOSEN:-eval/results/pick_place.json}
MAIN_DATASET=${MAIN_DATASET:-runs/round2/dataset}  # the main run's data, shared by the size axis
mkdir -p "$OUT"

run() {  # AXIS METHOD [experiment flags...]; both methods share the axis' folder and dataset
  local axis=$1 method=$2
  shift 2
  if [ "$method" != hl_gauss ]; then  # the hl_gauss lane collects the axis' dataset first
    while [ ! -d "$OUT/$axis/runs" ]; do sleep 10; done
  fi
  qtransformer experiment --task pick_place --out "$OUT/$axis" --cache "$CACHE/$axis" \
    --results "$CACHE/$axis/results_$method.json" --methods "$method" --seeds 3 \
    --chosen-from "$CHOSEN" "$@"
}
size() {  # METHOD WIDTHxLAYERS: one model size on the main run's dataset
  local method=$1 size=$2
  local width=${size%x*} layers=${size#*x}
  mkdir -p "$OUT/w${size}"
  if [ -d "$MAIN_DATASET" ] && [ ! -e "$OUT/w${size}/dataset" ]; then
    ln -s "$(realpath "$MAIN_DATASET")" "$OUT/w${size}/dataset"
  fi
  echo "{\"model\": {\"embed_dim\": $width, \"num_layers\": $layers}}" > "$OUT/w${size}.json"
  run "w${size}" "$method" --config "$OUT/w${size}.json"
}
lane() {  # METHOD: the two cheaper sizes, the data axis, then the largest size
  # 256x4 goes last: it costs about as much as the rest of the lane, and 64x2 (the main run),
  # 128x2 and 128x4 already give the three sizes the issue asks for.
  local method=$1
  size "$method" 128x2
  size "$method" 128x4
  run demos200 "$method" --episodes 2400 --steps 20000
  size "$method" 256x4
}
lane hl_gauss > "$OUT/lane_hl_gauss.log" 2>&1 &
lane mse > "$OUT/lane_mse.log" 2>&1 &
wait
