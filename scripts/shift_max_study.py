"""Can a maximum over shifts keep its aligned accuracy if its noise floor is subtracted? Measured, not adopted.

For the robustness bench's plain DIF cards of GENERATOR (``<generator>.dif.s0..2`` in STORE_DIR, made by
``scripts/robustness_bench.sh``), on TARGET and on the real photos held out of fitting and calibration, clean,
shifted by one pixel and cropped at a random offset, this prints the balanced accuracy of:
  * ``plain``: the correlation at no shift;
  * ``max``: the largest correlation over the 224 other shifts of the full residual within +-7 pixels
    (signed; the earlier ``shift-max`` took |correlation| over 64);
  * ``penalised``: max(plain, max - lambda), lambda the mean gain of the maximum over plain on the card's
    calibration real photos: the maximum's own null, so an aligned real photo gains nothing on average.
Each statistic's cut is the 98% quantile of its scores on the card's calibration real photos (clean).
Usage: python3 scripts/shift_max_study.py DATA_ROOT GENERATOR TARGET [STORE_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from engine.api import residuals_of
from engine.data.images import list_images, load_images
from engine.data.perturb import perturb
from engine.method.correlation import standardize
from engine.storage.store import Store

REACH = 7  # pixels: the crop offsets crop-random draws (1-7 per axis)


def plain_and_max(residuals: torch.Tensor, fingerprint: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per residual: the correlation at no shift and the largest over the other shifts within REACH."""
    r, f = standardize(residuals.float()), standardize(fingerprint.float().unsqueeze(0))
    n, c, h, w = r.shape
    spectrum = (torch.fft.rfft2(r) * torch.fft.rfft2(f).conj()).sum(dim=1)
    cross = torch.fft.irfft2(spectrum, s=(h, w)) / (c * h * w)  # cross[:, dy, dx]: fingerprint rolled by (dy, dx)
    near = torch.arange(-REACH, REACH + 1) % h
    window = cross[:, near][:, :, near].reshape(n, -1).clone()
    window[:, window.shape[1] // 2] = -np.inf  # the no-shift value is plain's
    return cross[:, 0, 0].numpy(), window.max(dim=1).values.numpy()


def main(data: Path, generator: str, target: str, store_dir: Path) -> None:
    store = Store(store_dir)
    real_all = load_images(list_images(data / "real"), crop=None)[0]
    by_hash = {im.sha256: im for im in real_all}
    target_images = load_images(list_images(data / target), crop=None)[0]
    print("| pair | copy | plain | max | penalised | real flagged: plain / max / penalised |")
    print("|---|---|---|---|---|---|")
    rows: dict[str, list] = {}
    for seed in (0, 1, 2):
        fp = store.load(f"{generator}.dif.s{seed}")
        used = set(fp.train_files["real"]) | set(fp.calibration_set["real"])
        held_out = [im for im in real_all if im.sha256 not in used]
        calibration = [by_hash[h] for h in fp.calibration_set["real"]]

        def scores(images: list, copy: str, gain: float) -> np.ndarray:
            res = residuals_of(perturb(images, copy), fp.extractor, fp.crop, fp.border, store)
            plain, best = plain_and_max(res, fp.tensor)
            return np.stack([plain, np.maximum(plain, best), np.maximum(plain, best - gain)], axis=1)

        cal_plain, cal_best = plain_and_max(
            residuals_of(calibration, fp.extractor, fp.crop, fp.border, store), fp.tensor
        )
        gain = float(np.mean(np.maximum(cal_best - cal_plain, 0.0)))
        cuts = np.quantile(scores(calibration, "none", gain), 0.98, axis=0)
        for copy in ("none", "shift1", "crop-random"):
            real_flagged = (scores(held_out, copy, gain) > cuts).mean(axis=0)
            target_flagged = (scores(target_images, copy, gain) > cuts).mean(axis=0)
            rows.setdefault(copy, []).append(np.r_[(target_flagged + 1 - real_flagged) / 2, real_flagged])
    for copy, values in rows.items():
        m = np.mean(values, axis=0)
        print(
            f"| {generator} → {target} | {copy} | {m[0]:.3f} | {m[1]:.3f} | {m[2]:.3f} "
            f"| {m[3]:.1%} / {m[4]:.1%} / {m[5]:.1%} |",
            flush=True,
        )


if __name__ == "__main__":
    args = sys.argv[1:]
    main(Path(args[0]), args[1], args[2], Path(args[3] if len(args) > 3 else "docs/results/robustness/store"))
