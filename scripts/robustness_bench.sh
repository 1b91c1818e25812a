#!/usr/bin/env bash
# The robustness matrix of README "Robustness" (issue: suspect images as they really arrive).
# Trains sd1 and ldm fingerprints (DIF, Marra18; with and without JPEG augmentation; 3 seeds) the dif-train
# way, reads each under three statistics, and detects every set and the held-out real photos after each
# degradation. Usage: bash scripts/robustness_bench.sh [DATA_ROOT] [OUT]
set -euo pipefail
DATA=${1:-../shared/datasets}
OUT=${2:-docs/results/robustness}
exec dif bench --data "$DATA" --train-sets sd1,ldm --test-sets sd1,sd1-b,ldm,ldm-b,dalle-mini \
  --methods dif,marra18 --repeats 3 --augment none,jpeg --correlation plain,periodic,phase \
  --perturb none,jpeg75,jpeg50,scale0.5,shift1,crop-random --out "$OUT"
