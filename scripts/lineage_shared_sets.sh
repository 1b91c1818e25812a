#!/usr/bin/env bash
# Lineage of the developers' shared sets: dif train (defaults, N = 64, seed 0) on each generated set,
# then dif cross and dif lineage. Outputs in docs/results/lineage/.
#   bash scripts/lineage_shared_sets.sh [DATA=../shared/datasets] [BENCH_STORE=docs/results/transfer/store]
# When the transfer benchmark's store is there, its seed-0 fingerprints are imported first: the dif
# train calls below are then cache hits (same train key), which shows the benchmark trains as dif train.
set -euo pipefail
cd "$(dirname "$0")/.."
D=${1:-../shared/datasets}
BENCH=${2:-docs/results/transfer/store}
OUT=docs/results/lineage
SETS="sd1 sd1-b sd14-dreambooth ldm ldm-b dalle-mini"
mkdir -p $OUT
if [ -d "$BENCH" ]; then
  for s in sd1 sd1-b ldm ldm-b dalle-mini; do
    tmp=$(mktemp)
    dif export "$s.dif.s0" "$tmp" --cache "$BENCH" >/dev/null && dif import "$tmp" --name "$s" --force >/dev/null || true
    rm -f "$tmp"
  done
fi
for s in $SETS; do
  dif train --name "$s" --real "$D/real" --fake "$D/$s" --train-size 64 --json --quiet > "$OUT/train-$s.json"
done
dif cross $SETS --json > $OUT/cross.json
dif cross $SETS > $OUT/cross.txt
dif lineage $SETS --json --png $OUT/lineage.png --graphml $OUT/lineage.graphml > $OUT/lineage.json
cat $OUT/cross.txt
