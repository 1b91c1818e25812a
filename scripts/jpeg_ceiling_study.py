"""How far can any cut on the JPEG reading go? (docs/results/readers/ceiling.md)

For default fingerprints (dif train's defaults, N = 64, seeds 0-2) of GENERATOR, on JPEG re-saves of
each TARGET set and of the real photos held out of fitting and calibration, this prints per quality:
  * the AUC of the card's JPEG reading as ``dif detect`` reads a JPEG (the JPEG reader: ``periodic-rgb``
    with its template fitted on JPEG re-saves plus its weights on the file's coefficient sign leans,
    engine/method/jpeg_reader.py and jpeg_coefficients.py)
    and the share of TARGET it flags at a cut placed, after the fact, at exactly 10% of those
    held-out real photos: an oracle cut, the most any calibration of this reading can give at the
    done-when's 10% false-positive limit;
  * the same for the earlier JPEG reading (``periodic``: the fingerprint's luma 8 x 8 periodic part);
  * the same for a per-quality matched filter in the DCT basis of the periodic part: the
    fingerprint's coefficients times their JPEG attenuation (measured on the fit's own generated
    images, clean against re-saved) over their variance among re-saved real photos (the reference
    pool and the fit's real photos). Nothing of TARGET or of the held-out photos goes into it.
Usage: python3 scripts/jpeg_ceiling_study.py DATA_ROOT GENERATOR TARGET[,TARGET...] [STORE_DIR]
Residuals are cached (DIF_CACHE_DIR); a STORE_DIR that already holds the fits makes it a re-read.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.fft import dctn
from sklearn.metrics import roc_auc_score

from engine.api import jpeg_reading_of, residuals_of, rho_for, train_from_folders
from engine.data.images import list_images, load_images
from engine.data.perturb import perturb
from engine.data.reference_pool import build_pool
from engine.method.config import TrainConfig
from engine.method.correlation import luma, periodic_part, standardize
from engine.storage.store import Store

QUALITIES = ("none", "jpeg95", "jpeg90", "jpeg75", "jpeg50")
READER = "the card's JPEG reading now"


def periodic_dct(residuals) -> np.ndarray:
    """N x 64: 2-D DCT of the luma 8 x 8 periodic part (DC zeroed: the periodic part is zero-mean)."""
    part = periodic_part(luma(standardize(residuals.float()))).numpy().reshape(-1, 8, 8)
    coefficients = dctn(part, axes=(1, 2), norm="ortho").reshape(len(part), 64)
    coefficients[:, 0] = 0
    return coefficients


def oracle_share(score: dict, target: str) -> tuple[float, float]:
    """AUC against held-out real, and the share of ``target`` past the cut at 10% of held-out real."""
    real, fake = score["held_out_real"], score[target]
    auc = roc_auc_score(np.r_[np.zeros(len(real)), np.ones(len(fake))], np.r_[real, fake])
    return auc, float(np.mean(fake > np.quantile(real, 0.9)))


def main(data: Path, generator: str, targets: list[str], store_dir: Path) -> None:
    store, pool = Store(store_dir), build_pool(256)
    real_all = load_images(list_images(data / "real"), crop=None)[0]
    fake_all = load_images(list_images(data / generator), crop=None)[0]
    target_sets = {t: load_images(list_images(data / t), crop=None)[0] for t in targets}
    print("| pair | seed | JPEG | reading | AUC | flagged at the oracle 10% cut |\n|---|---|---|---|---|---|")
    cells: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for seed in (0, 1, 2):
        config = TrainConfig(seed=seed)
        fp = train_from_folders(
            f"{generator}-s{seed}", data / "real", data / generator, config, 64, store, reference_pool=pool
        )["fingerprint"]
        used = set(fp.train_files["real"]) | set(fp.calibration_set["real"])
        sets = {
            "fit_real": [im for im in real_all if im.sha256 in set(fp.train_files["real"])],
            "fit_fake": [im for im in fake_all if im.sha256 in set(fp.train_files["fake"])],
            "pool": pool.images,
            "held_out_real": [im for im in real_all if im.sha256 not in used],
            **target_sets,
        }
        fingerprint = periodic_dct(fp.tensor.unsqueeze(0))[0]

        def coefficients(quality: str) -> dict[str, np.ndarray]:
            return {
                k: periodic_dct(residuals_of(perturb(v, quality), fp.extractor, fp.crop, fp.border, store))
                for k, v in sets.items()
            }

        clean = coefficients("none")
        for quality in QUALITIES:
            now = clean if quality == "none" else coefficients(quality)
            reader = jpeg_reading_of(fp)  # as dif detect reads a JPEG
            score = {k: rho_for([reader], perturb(v, quality), store)[:, 0] for k, v in sets.items()}
            for target in targets:
                auc, share = oracle_share(score, target)
                cells.setdefault((target, quality, READER), []).append((auc, share))
                print(f"| {generator} → {target} | {seed} | {quality} | {READER} | {auc:.3f} | {share:.1%} |")
            gain = (clean["fit_fake"] * now["fit_fake"]).sum(0) / ((clean["fit_fake"] ** 2).sum(0) + 1e-9)
            real_like = np.r_[now["pool"], now["fit_real"], now["fit_fake"]]
            matched = fingerprint * gain / (real_like.var(0) + 1e-6)
            for label, weights in (
                ("periodic (the earlier JPEG reading)", fingerprint),
                ("DCT matched filter", matched),
            ):
                score = {k: c @ weights for k, c in now.items()}
                for target in targets:
                    auc, share = oracle_share(score, target)
                    cells.setdefault((target, quality, label), []).append((auc, share))
                    print(f"| {generator} → {target} | {seed} | {quality} | {label} | {auc:.3f} | {share:.1%} |")

    print("\n| pair | JPEG | reading | AUC, mean of 3 seeds | flagged at the oracle 10% cut, mean |")
    print("|---|---|---|---|---|")
    for (target, quality, label), values in cells.items():
        auc, share = np.mean(values, axis=0)
        print(f"| {generator} → {target} | {quality} | {label} | {auc:.3f} | {share:.1%} |")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(
        Path(args[0]),
        args[1],
        args[2].split(","),
        Path(args[3] if len(args) > 3 else "artifacts/jpeg-ceiling-store"),
    )
