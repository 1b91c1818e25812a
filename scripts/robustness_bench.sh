#!/usr/bin/env bash
# The robustness matrices of docs/RESULTS.md, "Robustness" (issue: suspect images as they really arrive).
#  1. sd1 and ldm fingerprints (DIF, Marra18; with and without JPEG augmentation; 3 seeds), trained the
#     dif-train way, each read under three statistics, detecting every set and the held-out real photos
#     after each degradation (both alike);
#  2. each augmentation policy alone (DIF, sd1, seed 0): what each degradation seen in fitting buys;
#  3. noise copies, the one policy that looked good in 2, on both pairs and 3 seeds;
#  4. JPEG suspects as dif detect now reads them (a plain card reads every JPEG with its JPEG reader,
#     calibrated among JPEG re-saves), four qualities (docs/results/robustness-jpeg-reading/ keeps the same
#     run from before the JPEG reader, when a JPEG was read with periodic calibrated on uncompressed photos);
#     4b. the same with the JPEG reading cut at 10% of real JPEGs (--jpeg-target-fpr 0.1);
#  5. shifted and offset crops read as dif detect reads them (offsets on: plain+offsets), beside plain at the
#     grid (dif detect --no-offsets) and phase;
#  6. half-size copies as dif detect now reads them (an image that looks upscaled gets the card's upscaled
#     reader, a template fitted on half-size copies enlarged back; offsets on), with the clean column beside them.
# Usage: bash scripts/robustness_bench.sh [DATA_ROOT] [OUT_ROOT]
set -euo pipefail
DATA=${1:-../shared/datasets}
OUT=${2:-docs/results}
PERTURB=none,jpeg75,jpeg50,scale0.5,shift1,crop-random
dif bench --data "$DATA" --train-sets sd1,ldm --test-sets sd1,sd1-b,ldm,ldm-b,dalle-mini \
  --methods dif,marra18 --repeats 3 --augment none,jpeg --correlation plain,periodic,phase \
  --perturb "$PERTURB" --out "$OUT/robustness"
# the second run shares the first one's fingerprint store: its none and jpeg fits are cache hits
mkdir -p "$OUT/robustness-augment" && ln -sfn ../robustness/store "$OUT/robustness-augment/store"
dif bench --data "$DATA" --train-sets sd1 --test-sets sd1,sd1-b --methods dif --repeats 1 \
  --augment none,jpeg,scale,blur,offset,noise,world --correlation plain,periodic \
  --perturb "$PERTURB" --out "$OUT/robustness-augment"
# 3. the one policy that looked good on seed 0, on both pairs and 3 seeds (its none fits are cache hits)
mkdir -p "$OUT/robustness-noise" && ln -sfn ../robustness/store "$OUT/robustness-noise/store"
dif bench --data "$DATA" --train-sets sd1,ldm --test-sets sd1-b,ldm-b,dalle-mini --methods dif --repeats 3 \
  --augment none,noise --correlation plain --perturb none,jpeg75,scale0.5 --out "$OUT/robustness-noise"
# 4. the default reading of JPEG suspects (the card's JPEG reading), at four qualities
mkdir -p "$OUT/robustness-jpeg-reader" && ln -sfn ../robustness/store "$OUT/robustness-jpeg-reader/store"
dif bench --data "$DATA" --train-sets sd1,ldm --test-sets sd1-b,ldm-b,sd14-dreambooth,dalle-mini --methods dif --repeats 3 \
  --augment none --correlation plain --perturb none,jpeg95,jpeg90,jpeg75,jpeg50 \
  --out "$OUT/robustness-jpeg-reader"
# 4b. the same with the JPEG reading cut at 10% of real JPEGs (dif train --jpeg-target-fpr 0.1): only that cut moves
mkdir -p "$OUT/robustness-jpeg-target10" && ln -sfn ../robustness/store "$OUT/robustness-jpeg-target10/store"
dif bench --data "$DATA" --train-sets sd1,ldm --test-sets sd1-b,ldm-b,sd14-dreambooth,dalle-mini --methods dif --repeats 3 \
  --augment none --correlation plain --perturb none,jpeg95,jpeg90,jpeg75,jpeg50 --jpeg-target-fpr 0.1 \
  --out "$OUT/robustness-jpeg-target10"
# 5. offsets: an off-grid image is also read with phase (the plain fits: cache hits, re-read)
mkdir -p "$OUT/robustness-offsets" && ln -sfn ../robustness/store "$OUT/robustness-offsets/store"
dif bench --data "$DATA" --train-sets sd1,ldm --test-sets sd1-b,ldm-b,sd14-dreambooth,dalle-mini --methods dif --repeats 3 \
  --augment none --correlation plain,phase,plain+offsets --perturb none,shift1,crop-random \
  --out "$OUT/robustness-offsets"
# 6. half-size copies as dif detect reads them: the upscaled reader (the plain fits: cache hits, re-read)
mkdir -p "$OUT/robustness-upscaled" && ln -sfn ../robustness/store "$OUT/robustness-upscaled/store"
dif bench --data "$DATA" --train-sets sd1,ldm --test-sets sd1-b,ldm-b,sd14-dreambooth,dalle-mini --methods dif --repeats 3 \
  --augment none --correlation plain+offsets --perturb none,scale0.5,resize --out "$OUT/robustness-upscaled"
