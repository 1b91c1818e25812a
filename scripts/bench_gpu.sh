#!/usr/bin/env bash
# The GPU path, measured where a CUDA GPU is present (docs/RESULTS.md, "GPU"):
#   1. residual extractors: milliseconds per 256 x 256 image on the GPU and on the CPU beside it;
#   2. three default sd1 fingerprints (N = 64, seeds 0-2, no reference pool so that a CPU run on the
#      same folders can be compared cell by cell): fit seconds, flagged shares of sd1-b/ and real/;
#   3. the same seed-0 fit twice on the GPU from cold caches: are the two fingerprints identical?
#   4. the test suite with CUDA as the default device (tests that need the dashboard's, provenance's
#      or the cluster's extras are left out where those are not installed).
# Usage: bash scripts/bench_gpu.sh DATA_ROOT OUT_DIR   (DATA_ROOT holds real/, sd1/ and sd1-b/; the figures in
# docs/results/gpu/ read the copies of `python3 scripts/pack_for_device.py ../shared/datasets .gpudata`)
# DIF_DEVICE=cpu runs steps 2-3 on the CPU, for the comparison; BENCH_STEPS picks steps (default
# "extractors fits tests"). Install the [provenance] extra on both sides: without invisible-watermark
# the SD watermark goes unchecked and unmatched, and the fits are not comparable.
set -uo pipefail
DATA=$1
OUT=$2
mkdir -p "$OUT"
WORK=$(mktemp -d)
dif() { python3 -c 'import sys; from engine.cli.main import main; sys.exit(main())' "$@"; }
python3 -c 'import torch; from engine.device import default_device, describe_device; print(torch.__version__, describe_device(default_device()))' | tee "$OUT/device.txt"

STEPS=${BENCH_STEPS:-extractors fits tests}
if [ "${DIF_DEVICE:-}" != cpu ] && [[ $STEPS == *extractors* ]]; then
  python3 scripts/bench_extractors.py --device cuda --threads 8 --images 256 --batch 32 | tee "$OUT/extractors.md"
  python3 scripts/bench_extractors.py --device cpu --threads 8 --images 32 --batch 8 | tail -n +3 | tee -a "$OUT/extractors.md"
fi

[[ $STEPS == *fits* ]] && echo "| seed | fit seconds | wall seconds | watermark matched | sd1-b flagged | real flagged | tensor sha256 |" | tee "$OUT/fits.md"
[[ $STEPS == *fits* ]] && echo "|---|---|---|---|---|---|---|" | tee -a "$OUT/fits.md"
for seed in $([[ $STEPS == *fits* ]] && echo 0 1 2); do
  start=$(date +%s.%N)
  DIF_CACHE_DIR="$WORK/cache" dif train --name "sd1-s$seed" --real "$DATA/real" --fake "$DATA/sd1" --train-size 64 \
    --seed "$seed" --no-reference-pool --json --quiet > "$WORK/train-$seed.json" || { echo "train failed"; continue; }
  end=$(date +%s.%N)
  for name in sd1-b real; do
    DIF_CACHE_DIR="$WORK/cache" dif detect --name "sd1-s$seed" "$DATA/$name" --json > "$WORK/detect-$seed-$name.json"
  done
  python3 - "$WORK" "$seed" "$start" "$end" <<'PY' | tee -a "$OUT/fits.md"
import hashlib, json, sys
from pathlib import Path

from engine.storage.store import Store

work, seed, start, end = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
train = json.loads((work / f"train-{seed}.json").read_text())
share = {}
for name in ("sd1-b", "real"):
    rows = json.loads((work / f"detect-{seed}-{name}.json").read_text())["results"]
    share[name] = sum(r["label"] == "generated" for r in rows) / len(rows)
fp = Store(work / "cache").load(f"sd1-s{seed}")
digest = hashlib.sha256(fp.tensor.float().cpu().numpy().tobytes()).hexdigest()[:12]
fit = train.get("train_seconds", float("nan"))
matched = train.get("watermark", {}).get("matched")
print(f"| {seed} | {fit:.1f} | {end - start:.1f} | {matched} | {share['sd1-b']:.1%} | {share['real']:.1%} | {digest} |")
PY
done

[[ $STEPS == *fits* ]] && DIF_CACHE_DIR="$WORK/cache2" dif train --name again --real "$DATA/real" --fake "$DATA/sd1" --train-size 64 --seed 0 \
  --no-reference-pool --quiet > /dev/null
[[ $STEPS == *fits* ]] && python3 - "$WORK" <<'PY' | tee "$OUT/determinism.txt"
import sys
from pathlib import Path

from engine.storage.store import Store

work = Path(sys.argv[1])
a, b = Store(work / "cache").load("sd1-s0"), Store(work / "cache2").load("again")
diff = (a.tensor.float() - b.tensor.float()).abs().max().item()
print(f"seed 0 fitted twice from cold caches: max |difference| {diff:.3g}, mu_fake {a.mu_fake:.6f} vs {b.mu_fake:.6f}")
PY

if [ "${DIF_DEVICE:-}" != cpu ] && [[ $STEPS == *tests* ]]; then
  ignore=()
  python3 -c "import streamlit, plotly" 2>/dev/null || ignore+=(--ignore-glob 'tests/test_dashboard*' --ignore tests/test_lineage.py)
  python3 -c "import c2pa, imwatermark" 2>/dev/null || ignore+=(--ignore tests/test_provenance.py)
  python3 -c "import ray" 2>/dev/null || ignore+=(--ignore tests/test_study_cluster.py)
  timeout "${PYTEST_SECONDS:-300}" python3 -m pytest -q -p no:cacheprovider -n 6 --dist loadfile "${ignore[@]}" tests 2>&1 \
    | tail -40 | tee "$OUT/pytest.txt"
fi
rm -rf "$WORK"
