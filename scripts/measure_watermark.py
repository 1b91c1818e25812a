"""Measure the SD watermark presence statistics: marked folder vs unmarked folder, and own marked photos.

    OMP_NUM_THREADS=1 python scripts/measure_watermark.py MARKED_DIR UNMARKED_DIR

Prints, for plain and realigned bit agreement: mean, spread, range, AUC and balanced accuracy /
TPR / FPR at a few thresholds; then full size vs 256x256 centre crop on scikit-image photos
resized to 512x512 and marked with the invisible-watermark encoder (as the SD scripts do).
Thresholds picked on these numbers are in-sample: treat the balanced accuracy as optimistic.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from PIL import Image

from engine.data.images import list_images, load_image
from engine.provenance.watermark import SD_PAYLOAD, embed_sd_watermark, read_sd_watermark

THRESHOLDS = (0.55, 0.6, 0.65, 0.7, 0.72, 0.75, 0.85)
PHOTOS = (
    "astronaut",
    "camera",
    "hubble_deep_field",
    "coffee",
    "chelsea",
    "rocket",
    "retina",
    "colorwheel",
    "immunohistochemistry",
)


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Probability a marked image scores above an unmarked one (ties count half)."""
    return float(np.mean((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])))


def folders(marked: str, unmarked: str) -> dict:
    pos = [read_sd_watermark(load_image(p, crop=None).pixels) for p in list_images(marked)]
    neg = [read_sd_watermark(load_image(p, crop=None).pixels) for p in list_images(unmarked)]
    out: dict = {
        "n": [len(pos), len(neg)],
        "exact_text": [sum(r.exact for r in pos), sum(r.exact for r in neg)],
        "exact_after_realignment": [
            sum(r.aligned_text == SD_PAYLOAD.decode() for r in pos),
            sum(r.aligned_text == SD_PAYLOAD.decode() for r in neg),
        ],
        "flagged": [
            float(np.mean([r.generator is not None for r in pos])),
            float(np.mean([r.generator is not None for r in neg])),
        ],
    }
    for stat in ("bit_agreement", "aligned_agreement"):
        a, b = np.array([getattr(r, stat) for r in pos]), np.array([getattr(r, stat) for r in neg])
        row = {
            "marked": {"mean": a.mean(), "std": a.std(), "min": a.min(), "max": a.max()},
            "unmarked": {"mean": b.mean(), "std": b.std(), "min": b.min(), "max": b.max()},
            "auc": auc(a, b),
        }
        for t in THRESHOLDS:
            tpr, fpr = float(np.mean(a >= t)), float(np.mean(b >= t))
            row[f">={t}"] = {"tpr": tpr, "fpr": fpr, "balanced_accuracy": 0.5 * (tpr + 1 - fpr)}
        out[stat] = row
    return out


def own_photos() -> list[dict]:
    from skimage import data

    rows = []
    for name in PHOTOS:
        img = getattr(data, name)()
        img = np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else img[:, :, :3]
        plain = np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((512, 512), Image.LANCZOS))
        marked = embed_sd_watermark(plain)
        c = slice(128, 384)
        full, crop, plain_crop = (
            read_sd_watermark(marked),
            read_sd_watermark(marked[c, c]),
            read_sd_watermark(plain[c, c]),
        )
        rows.append(
            {
                "photo": name,
                "full_exact": full.exact,
                "full_agreement": full.bit_agreement,
                "crop_text": crop.text,
                "crop_agreement": crop.bit_agreement,
                "crop_aligned": crop.aligned_agreement,
                "crop_aligned_text": crop.aligned_text,
                "unmarked_crop_agreement": plain_crop.bit_agreement,
                "unmarked_crop_aligned": plain_crop.aligned_agreement,
            }
        )
    return rows


if __name__ == "__main__":
    result = {"own_photos": own_photos()}
    if len(sys.argv) == 3:
        result["folders"] = folders(sys.argv[1], sys.argv[2])
    print(json.dumps(result, indent=1, default=float))
