"""Can a reader made for JPEG or shifted suspects rescue the default fingerprint? (docs/RESULTS.md, "Robustness").

For the default `sd1` fingerprint (dif train's defaults, N = 64) and JPEG re-saves at qualities 90, 75
and 50 (Pillow, 4:2:0), this prints, on `sd1-b/` against `real/`:
  * the plain rho read with the clean cut (what `dif detect` does today) and with a cut set on the
    reference pool re-saved at the suspect's quality (format-aware calibration);
  * a JPEG reader: logistic regression on the 2-D DCT of the residual's 8 x 8 periodic part (signed and
    absolute), fitted on the JPEG copies of the fingerprint's own fit images, with its cut at 2% and
    5% and 10% of the JPEG copies of the calibration real photos (held out of that fit).
Flagged share of `sd1-b/` and of `real/`, and the AUC. A second table asks the same of a phase-free
reader (the same regression on the |DFT| of the periodic part, which a crop offset cannot change):
flagged shares of four generators' images and of `real/`, clean, shifted by a pixel and cropped at a
random offset, beside the fingerprint's plain rho. Needs scikit-learn and scipy.
Usage: python3 scripts/reader_study.py DATA_ROOT [STORE_DIR [RESIDUAL_CACHE_DIR]]
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


def periodic_part(residuals: torch.Tensor) -> np.ndarray:
    """N x C x 8 x 8: each colour's mean over the 8 x 8 blocks, less its own mean."""
    n, c, h, w = residuals.shape
    blocks = residuals.reshape(n, c, h // 8, 8, w // 8, 8).mean(dim=(2, 4)).numpy()
    return blocks - blocks.mean(axis=(2, 3), keepdims=True)


def periodic_dct(residuals: torch.Tensor) -> np.ndarray:
    """N x 384: signed and absolute 2-D DCT of the periodic part (JPEG quantises in this basis)."""
    coefficients = dctn(periodic_part(residuals), axes=(2, 3), norm="ortho").reshape(len(residuals), -1)
    return np.c_[coefficients, np.abs(coefficients)]


def periodic_magnitudes(residuals: torch.Tensor) -> np.ndarray:
    """N x 192: |DFT| of the periodic part, unchanged by a cyclic shift, so by where the crop starts."""
    return np.abs(np.fft.fft2(periodic_part(residuals), axes=(2, 3))).reshape(len(residuals), -1)


def reader(x_real: np.ndarray, x_fake: np.ndarray):
    """A logistic regression fitted on the fingerprint's own fit images."""
    y = np.r_[np.zeros(len(x_real)), np.ones(len(x_fake))]
    return make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=3000)).fit(np.r_[x_real, x_fake], y)


def phase_free_table(data: Path, store: Store, fp, sets: dict) -> None:
    """The phase-free reader beside the fingerprint, on shifted copies of four generators' images."""
    others = ("sd1-b", "ldm-b", "dalle-mini", "sd14-dreambooth")
    sets = {**sets, **{name: load_images(list_images(data / name), crop=None)[0] for name in others}}
    tensor = standardize(fp.tensor.unsqueeze(0).float())
    print("\n| copy | reading | " + " | ".join(f"`{n}/`" for n in others) + " | `real/` |")
    print("|---|---|" + "---|" * (len(others) + 1))
    model = cut_rho = cut_reader = None
    for copy in ("none", "shift1", "crop-random"):
        residuals = {
            k: standardize(residuals_of(perturb(sets[k], copy), fp.extractor, fp.crop, fp.border, store).float())
            for k in ("pool", "suspect_real", *others) + (("fit_real", "fit_fake") if copy == "none" else ())
        }
        rho = {k: (r * tensor).mean(dim=(1, 2, 3)).numpy() for k, r in residuals.items()}
        mags = {k: periodic_magnitudes(r) for k, r in residuals.items()}
        if copy == "none":  # both readings keep the cut set on the clean pool: a shift is not known in advance
            model = reader(mags["fit_real"], mags["fit_fake"])
            cut_rho, cut_reader = (
                np.quantile(rho["pool"], 0.98),
                np.quantile(model.decision_function(mags["pool"]), 0.98),
            )
        for label, score, cut in (
            ("fingerprint, plain rho", rho, cut_rho),
            ("phase-free reader", {k: model.decision_function(m) for k, m in mags.items()}, cut_reader),
        ):
            cells = " | ".join(f"{np.mean(score[k] > cut):.1%}" for k in (*others, "suspect_real"))
            print(f"| {copy} | {label} | {cells} |")


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
        jpeg_reader = reader(features["fit_real"], features["fit_fake"])
        score = {k: jpeg_reader.decision_function(f) for k, f in features.items()}
        fake, real = score["suspect_fake"], score["suspect_real"]
        auc = roc_auc_score(np.r_[np.zeros(len(real)), np.ones(len(fake))], np.r_[real, fake])
        for share in (0.02, 0.05, 0.10):
            cut = np.quantile(score["cal_real"], 1 - share)
            label = f"JPEG reader, cut at {share:.0%} of held-out real"
            print(f"| {quality} | {label} | {auc:.3f} | {np.mean(fake > cut):.1%} | {np.mean(real > cut):.1%} |")
    phase_free_table(data, store, fp, sets)


if __name__ == "__main__":
    torch.manual_seed(0)
    args = sys.argv[1:]
    main(
        Path(args[0]),
        Path(args[1] if len(args) > 1 else "artifacts/jpeg-reader-store"),
        Path(args[2]) if len(args) > 2 else None,
    )
