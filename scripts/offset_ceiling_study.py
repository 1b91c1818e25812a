"""What does not knowing where a copy's 8-pixel grid went cost? (docs/results/offsets/ceiling.md)

For the robustness bench's plain DIF cards of GENERATOR (``<generator>.dif.s0..2`` in STORE_DIR, made by
``scripts/robustness_bench.sh``), on each TARGET set and on the real photos held out of fitting and
calibration, clean, shifted by one pixel and cropped at a random offset, this prints the balanced accuracy
of each statistic, and the share of TARGET it flags, at an oracle cut: the 98% quantile of its scores on
the held-out real photos given the same copy. So every column is ranked at the same 2% false-positive
rate and no calibration is involved: the most any cut on that statistic can give there. Another
generator's set as TARGET (``dalle-mini``) shows how much of it each statistic claims.
  * ``plain``: the fingerprint's correlation at the grid (the card's own reading);
  * ``known roll``: the periodic parts' correlation (``periodic-rgb``) at the roll the copy was made
    with, which a real suspect never tells: the ceiling of any roll search on the periodic part;
  * ``phase``: its maximum over the 64 rolls (the offset reading's statistic);
  * ``peak z`` and ``PCE``: the maximum normalised against the image's own 64 rolls, (max - mean) / sd
    and max^2 / mean of the other squares (the issue's "normalised against its own null");
  * ``full roll search``: the maximum over the 64 rolls of the full fingerprint's correlation plus twice
    the periodic parts' (each in units of its spread over the calibration real photos' rolls; 2 was the
    best of 0.25-8 on `sd1/` -> `sd1-b/`, so the column favours that pair).
Usage: python3 scripts/offset_ceiling_study.py DATA_ROOT GENERATOR TARGET[,TARGET...] [STORE_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from engine.api import residuals_of
from engine.data.images import LoadedImage, list_images, load_images
from engine.data.perturb import perturb, random_offset_of
from engine.method.correlation import periodic_part, phase_roll_matrix, standardize
from engine.storage.store import Store

PERIOD = 8
COPIES = ("none", "shift1", "crop-random")
COLUMNS = ("plain", "known roll", "phase", "peak z", "PCE", "full roll search")
FULL_WEIGHT = 2.0  # the periodic parts' weight in the full roll search, in spread units


def periodic_rolls(residuals: torch.Tensor, fingerprint: torch.Tensor) -> np.ndarray:
    """N x 64: correlation of each residual's periodic part with the fingerprint's rolled by (dy, dx), dy * 8 + dx
    (the values ``phase`` takes the maximum of)."""
    a = periodic_part(standardize(residuals.float()), PERIOD)
    b = periodic_part(standardize(fingerprint.float().unsqueeze(0)), PERIOD)
    return phase_roll_matrix(a, b)[:, 0].numpy()


def full_rolls(residuals: torch.Tensor, fingerprint: torch.Tensor) -> np.ndarray:
    """N x 64: the full fingerprint's plain correlation, rolled by (dy, dx) within one period (circular)."""
    r, f = standardize(residuals.float()), standardize(fingerprint.float().unsqueeze(0))
    n, c, h, w = r.shape
    cross = torch.fft.irfft2((torch.fft.rfft2(r) * torch.fft.rfft2(f).conj()).sum(dim=1), s=(h, w)) / (c * h * w)
    return cross[:, :PERIOD, :PERIOD].reshape(n, -1).numpy()


def known_rolls(images: list[LoadedImage], copy: str) -> np.ndarray:
    """The roll (dy * 8 + dx) that moves the fingerprint's grid where ``copy`` moved each image's."""
    if copy == "none":
        offsets = [(0, 0)] * len(images)
    elif copy == "shift1":
        offsets = [(1, 1)] * len(images)
    else:
        offsets = [random_offset_of(im.pixels) for im in images]
    return np.array([(dy % PERIOD) * PERIOD + dx % PERIOD for dy, dx in offsets])


def statistics(per: np.ndarray, full: np.ndarray, roll: np.ndarray, spread: tuple[float, float]) -> np.ndarray:
    """N x len(COLUMNS) scores, generated side high."""
    top = per.max(axis=1)
    others = (per**2).sum(axis=1) - top**2
    return np.stack(
        [
            full[:, 0],
            per[np.arange(len(per)), roll],
            top,
            (top - per.mean(axis=1)) / (per.std(axis=1) + 1e-12),
            np.sign(top) * top**2 / (others / (per.shape[1] - 1) + 1e-12),
            (full / spread[0] + FULL_WEIGHT * per / spread[1]).max(axis=1),
        ],
        axis=1,
    )


def main(data: Path, generator: str, targets: list[str], store_dir: Path) -> None:
    store = Store(store_dir)
    real_all = load_images(list_images(data / "real"), crop=None)[0]
    by_hash = {im.sha256: im for im in real_all}
    sets = {t: load_images(list_images(data / t), crop=None)[0] for t in targets}
    rows: dict[tuple[str, str], list] = {}
    for seed in (0, 1, 2):
        fp = store.load(f"{generator}.dif.s{seed}")
        used = set(fp.train_files["real"]) | set(fp.calibration_set["real"])
        held_out = [im for im in real_all if im.sha256 not in used]

        def rolls(images: list[LoadedImage]) -> tuple[np.ndarray, np.ndarray]:
            res = residuals_of(images, fp.extractor, fp.crop, fp.border, store)
            return periodic_rolls(res, fp.tensor), full_rolls(res, fp.tensor)

        cal_per, cal_full = rolls([by_hash[h] for h in fp.calibration_set["real"] if h in by_hash])
        spread = (float(cal_full.std()), float(cal_per.std()))
        for copy in COPIES:
            copies = perturb(held_out, copy)
            real = statistics(*rolls(copies), known_rolls(held_out, copy), spread)
            cut = np.quantile(real, 0.98, axis=0)
            for target, images in sets.items():
                generated = statistics(*rolls(perturb(images, copy)), known_rolls(images, copy), spread)
                tpr, fpr = (generated > cut).mean(axis=0), (real > cut).mean(axis=0)
                rows.setdefault((target, copy), []).append(np.stack([(tpr + 1 - fpr) / 2, tpr]))
        print(f"seed {seed} done", file=sys.stderr, flush=True)
    print(f"| pair | copy | {' | '.join(COLUMNS)} |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for (target, copy), values in rows.items():
        accuracy, flagged = np.mean(values, axis=0)
        cells = " | ".join(f"{a:.3f} ({f:.0%})" for a, f in zip(accuracy, flagged))
        print(f"| `{generator}/` → `{target}/` | {copy} | {cells} |", flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    store_dir = Path(args[3] if len(args) > 3 else "docs/results/robustness/store")
    main(Path(args[0]), args[1], args[2].split(","), store_dir)
