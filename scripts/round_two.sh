#!/usr/bin/env bash
# The papers' benchmark, round two (eval/experiment.py has the protocol), in two lanes of work,
# one per CPU core, in priority order. Every finished run is cached as CACHE/<run>.json, so
# running this again resumes where it stopped (a crash, a reboot, the end of a session).
#
#   nohup scripts/round_two.sh > runs/round2.log 2>&1 &      # start or resume, in the background
#   python scripts/experiment_status.py eval/results/pick_place_runs   # what is finished
#
# Order: HL-Gauss and MSE (tune + 5 test seeds), BC on all / on successful episodes, two-hot
# and CQL-SAC, then the 2 extra training seeds of the alpha sweeps, then one call over every
# method that gathers the cache into RESULTS and its plots.
set -euo pipefail
OUT=${OUT:-runs/round2}
CACHE=${CACHE:-eval/results/pick_place_runs}
RESULTS=${RESULTS:-eval/results/pick_place.json}
SWEEP_SEEDS=${SWEEP_SEEDS:-3}
mkdir -p "$OUT"

run() {  # one method (or a comma list); its partial results beside the runs
  qtransformer experiment --task pick_place --out "$OUT" --cache "$CACHE" \
    --results "$OUT/partial_${1//,/_}.json" --methods "$@"
}
lane_a() {
  for m in hl_gauss bc two_hot; do run "$m"; done
  for m in hl_gauss two_hot; do run "$m" --sweep-seeds "$SWEEP_SEEDS"; done
}
lane_b() {
  while [ ! -d "$OUT/runs" ]; do sleep 10; done  # lane a collects the shared dataset first
  for m in mse bc_filtered cql_sac; do run "$m"; done
  run mse --sweep-seeds "$SWEEP_SEEDS"
}
lane_a > "$OUT/lane_a.log" 2>&1 &
lane_b > "$OUT/lane_b.log" 2>&1 &
wait
qtransformer experiment --task pick_place --out "$OUT" --cache "$CACHE" --results "$RESULTS" \
  --sweep-seeds "$SWEEP_SEEDS"
