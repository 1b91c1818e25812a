#!/usr/bin/env bash
# The JPEG check of docs/RESULTS.md, "Robustness": an sd1 fingerprint trained with dif train's defaults
# (N = 64), read with the default statistic, with --correlation periodic and with --target-fpr 0.1 (the
# same fit: a cache hit, re-calibrated), on sd1-b/ and real/ and on their JPEG-75 re-saves (Pillow,
# quality 75); then one trained with no option at all (--train-size left at its default: the whole train
# half), and that one re-calibrated with --jpeg-target-fpr 0.1 (its JPEG reading's cut alone); then the
# N = 64 card with its JPEG reading removed, which reads JPEG files the plain way as cards did before;
# last, both default cards' JPEG readings at an oracle cut (10% of real/ JPEG-75).
# Usage: bash scripts/jpeg_done_when.sh [DATA_ROOT] [WORK_DIR]
set -euo pipefail
DATA=${1:-../shared/datasets}
WORK=${2:-artifacts/jpeg-check}
mkdir -p "$WORK"
python3 - "$DATA" "$WORK" <<'PY'
import sys
from pathlib import Path
from PIL import Image
data, work = Path(sys.argv[1]), Path(sys.argv[2])
for name in ("sd1-b", "real"):
    out = work / f"{name}-jpeg75"
    out.mkdir(parents=True, exist_ok=True)
    for src in sorted((data / name).rglob("*.png")):
        dst = out / (src.stem + ".jpg")
        if not dst.exists():
            Image.open(src).convert("RGB").save(dst, "JPEG", quality=75)
PY
for stat in plain periodic fpr10 default default-jpeg10; do
  case "$stat" in
    fpr10) options=(--train-size 64 --target-fpr 0.1) ;;
    default) options=() ;;
    default-jpeg10) options=(--jpeg-target-fpr 0.1) ;;
    *) options=(--train-size 64 --correlation "$stat") ;;
  esac
  dif train --name "sd1-$stat" --real "$DATA/real" --fake "$DATA/sd1" "${options[@]}" --quiet > /dev/null
  for name in sd1-b real; do
    for variant in "$DATA/$name" "$WORK/$name-jpeg75"; do
      dif detect --name "sd1-$stat" "$variant" --json | python3 -c "
import json, sys
rows = json.load(sys.stdin)['results']
print(f'{sys.argv[1]:9s} {sys.argv[2]}: {len(rows)} images, flagged {sum(r[\"label\"] == \"generated\" for r in rows) / len(rows):.1%}')" "$stat" "$variant"
    done
  done
done
python3 - "$DATA" "$WORK" <<'PY'
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.api import detect
from engine.data.images import list_images, load_images
from engine.storage.store import Store

data, work = Path(sys.argv[1]), Path(sys.argv[2])
store = Store()
card = replace(store.load("sd1-plain"), jpeg_reading={})
for rates in store.load("sd1-plain").jpeg_reading.get("by_quality", []):
    print(f"the card's JPEG reading on its calibration images re-saved: {rates}")
for folder in (work / "sd1-b-jpeg75", work / "real-jpeg75"):
    rows = detect(card, load_images(list_images(folder), crop=None)[0], store)
    flagged = sum(r["label"] == "generated" for r in rows) / len(rows)
    print(f"plain, no JPEG reading {folder}: {len(rows)} images, flagged {flagged:.1%}")
# the oracle: each default card's JPEG reading with its cut placed, after the fact, at 10% of real/ JPEG-75
for name in ("sd1-plain", "sd1-default"):
    rho = {f: np.array([r["rho"] for r in detect(store.load(name), load_images(list_images(work / f), crop=None)[0], store)])
           for f in ("sd1-b-jpeg75", "real-jpeg75")}
    cut = np.quantile(rho["real-jpeg75"], 0.9)
    print(f"{name}: the JPEG reading at a cut flagging 10% of real/ JPEG-75 (oracle): "
          f"sd1-b/ JPEG-75 flagged {np.mean(rho['sd1-b-jpeg75'] > cut):.1%}")
PY
