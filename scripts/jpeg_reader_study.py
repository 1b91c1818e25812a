"""Can a reader made for JPEG suspects rescue the default fingerprint? (docs/RESULTS.md, "Robustness").

For the default `sd1` fingerprint (dif train's defaults, N = 64) and JPEG re-saves at qualities 90, 75
and 50 (Pillow, 4:2:0), this prints, on `sd1-b/` against `real/`:
  * the plain rho read with the clean cut (what `dif detect` does today) and with a cut set on the
    reference pool re-saved at the suspect's quality (format-aware calibration);
  * a JPEG reader: logistic regression on the 2-D DCT of the residual's 8 x 8 periodic part (signed and
    absolute), fitted on the JPEG copies of the fingerprint's own fit images, with its cut at 2% and
    5% and 10% of the JPEG copies of the calibration real photos (held out of that fit).
Flagged share of `sd1-b/` and of `real/`, and the AUC. Needs scikit-learn and scipy.
Usage: python3 scripts/jpeg_reader_study.py DATA_ROOT [STORE_DIR [RESIDUAL_CACHE_DIR]]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from scipy.fft import dctn
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from engine.api import residuals_of, train_from_folders
from engine.data.images import list_images, load_images
from engine.data.perturb import perturb
from engine.data.reference_pool import build_pool
from engine.method.config import TrainConfig
from engine.method.correlation import standardize
from engine.storage.store import Store

QUALITIES = ("jpeg90", "jpeg75", "jpeg50")


def periodic_dct(residuals: torch.Tensor) -> np.ndarray:
    """N x 384: signed and absolute 2-D DCT of each colour's 8 x 8 block mean of the residual."""
    n, c, h, w = residuals.shape
    blocks = residuals.reshape(n, c, h // 8, 8, w // 8, 8).mean(dim=(2, 4)).numpy()
    coefficients = dctn(blocks, axes=(2, 3), norm="ortho").reshape(n, -1)
    return np.c_[coefficients, np.abs(coefficients)]


def main(data: Path, store_dir: Path, residual_dir: Path | None) -> None:
    store = Store(store_dir, residuals_root=residual_dir)
    result = train_from_folders(
        "sd1", data / "real", data / "sd1", TrainConfig(), 64, store, reference_pool=build_pool(256)
    )
    fp = result["fingerprint"]
    real_all = load_images(list_images(data / "real"), crop=None)[0]
    fake_all = load_images(list_images(data / "sd1"), crop=None)[0]
    pick = lambda images, shas: [im for im in images if im.sha256 in set(shas)]  # noqa: E731
    sets = {
        "fit_real": pick(real_all, fp.train_files["real"]),
        "fit_fake": pick(fake_all, fp.train_files["fake"]),
        "cal_real": pick(real_all, fp.calibration_set["real"]),
        "pool": build_pool(256).images,
        "suspect_fake": load_images(list_images(data / "sd1-b"), crop=None)[0],
        "suspect_real": real_all,
    }
    tensor = standardize(fp.tensor.unsqueeze(0).float())
    print("| JPEG | reading | AUC | `sd1-b/` flagged | `real/` flagged |\n|---|---|---|---|---|")
    clean_pool = None
    for quality in ("none",) + QUALITIES:
        residuals = {
            k: standardize(residuals_of(perturb(v, quality), fp.extractor, fp.crop, fp.border, store).float())
            for k, v in sets.items()
        }
        rho = {k: (r * tensor).mean(dim=(1, 2, 3)).numpy() for k, r in residuals.items()}
        clean_pool = rho["pool"] if quality == "none" else clean_pool
        fake, real = rho["suspect_fake"], rho["suspect_real"]
        auc = roc_auc_score(np.r_[np.zeros(len(real)), np.ones(len(fake))], np.r_[real, fake])
        for label, reference in (
            ("plain rho, clean cut", clean_pool),
            ("plain rho, cut on the pool at this quality", rho["pool"]),
        ):
            cut = np.quantile(reference, 0.98)
            print(f"| {quality} | {label} | {auc:.3f} | {np.mean(fake > cut):.1%} | {np.mean(real > cut):.1%} |")
        if quality == "none":
            continue
        features = {k: periodic_dct(r) for k, r in residuals.items()}
        x = np.r_[features["fit_real"], features["fit_fake"]]
        y = np.r_[np.zeros(len(features["fit_real"])), np.ones(len(features["fit_fake"]))]
        reader = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=3000)).fit(x, y)
        score = {k: reader.decision_function(f) for k, f in features.items()}
        fake, real = score["suspect_fake"], score["suspect_real"]
        auc = roc_auc_score(np.r_[np.zeros(len(real)), np.ones(len(fake))], np.r_[real, fake])
        for share in (0.02, 0.05, 0.10):
            cut = np.quantile(score["cal_real"], 1 - share)
            label = f"JPEG reader, cut at {share:.0%} of held-out real"
            print(f"| {quality} | {label} | {auc:.3f} | {np.mean(fake > cut):.1%} | {np.mean(real > cut):.1%} |")


if __name__ == "__main__":
    torch.manual_seed(0)
    args = sys.argv[1:]
    main(
        Path(args[0]),
        Path(args[1] if len(args) > 1 else "artifacts/jpeg-reader-store"),
        Path(args[2]) if len(args) > 2 else None,
    )
