#!/usr/bin/env bash
# HL-Gauss with `--td-sigma 1 --conservative-sigma 1` put through round two's protocol
# (docs/stall.md section 8): the same dataset, the same alpha grid, validation seed and budget
# as HL-Gauss at the papers' defaults, then its 5 test seeds. The decision rule for the default
# is in docs/stall.md section 8, written before the first run.
#
#   nohup scripts/round_two_td.sh > runs/round2_td.log 2>&1 &     # start or resume
#
# Every finished run is cached under CACHE, so running this again resumes.
set -euo pipefail
OUT=${OUT:-runs/round2_td}
CACHE=${CACHE:-eval/results/pick_place_td1cs1_runs}
RESULTS=${RESULTS:-eval/results/pick_place_td1cs1.json}
MAIN_DATASET=${MAIN_DATASET:-runs/round2/dataset}  # round two's data: the same episodes
mkdir -p "$OUT"
if [ -d "$MAIN_DATASET" ] && [ ! -e "$OUT/dataset" ]; then
  ln -s "$(realpath "$MAIN_DATASET")" "$OUT/dataset"
fi
echo '{"td_sigma": 1.0, "conservative_sigma": 1.0}' > "$OUT.td1cs1.json"  # inputs live outside OUT
qtransformer experiment --task pick_place --out "$OUT" --cache "$CACHE" --results "$RESULTS" \
  --methods hl_gauss --config "$OUT.td1cs1.json"
