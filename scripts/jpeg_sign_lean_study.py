"""What the JPEG reader's two inputs contribute (docs/results/readers/sign_leans.md).

The card's JPEG reader is Fisher's discriminant (Ledoit-Wolf) on the DCT of the residual's RGB 8 x 8
periodic part and on the sign leans of the JPEG file's quantised luma coefficients
(engine/method/jpeg_reader.py, jpeg_coefficients.py). This fits the discriminant the card's way (64
generated + 64 real fit images and the reference pool, re-saved at JPEG 90, 75 and 50, pooled) on each
input alone and on both, and prints per quality the AUC against real photos of scenes held out of the
fit and the share of each TARGET flagged at a cut placed, after the fact, at 10% of those photos.
Real photos are split by scene (half the scenes fit, the other half held out), 3 seeds.

Usage: python3 scripts/jpeg_sign_lean_study.py DATA_ROOT GENERATOR TARGET[,TARGET...]
Residuals are cached in the default store (DIF_CACHE_DIR).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from engine.api import residuals_of
from engine.data.images import list_images, load_images
from engine.data.perturb import perturb
from engine.data.reference_pool import build_pool
from engine.data.splits import group_of
from engine.method.config import TrainConfig
from engine.method.jpeg_coefficients import sign_leans
from engine.method.jpeg_reader import discriminant, periodic_features
from engine.storage.store import Store

QUALITIES = ("jpeg90", "jpeg75", "jpeg50")
INPUTS = ("template (periodic part)", "sign leans", "both (the reader)")


def features(images: list, store: Store) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per quality: (periodic-part DCT features, sign leans) of the images' JPEG re-saves."""
    config = TrainConfig()
    out = {}
    for quality in QUALITIES:
        copies = perturb(images, quality)
        residuals = residuals_of(copies, config.extractor, config.crop, config.border, store)
        out[quality] = (periodic_features(residuals), sign_leans(copies))
    return out


def pick(feats: tuple[np.ndarray, np.ndarray], which: str, rows=slice(None)) -> np.ndarray:
    periodic, leans = feats
    return {INPUTS[0]: periodic, INPUTS[1]: leans, INPUTS[2]: np.c_[periodic, leans]}[which][rows]


def main(data: Path, generator: str, targets: list[str]) -> None:
    store = Store()
    real_images = load_images(list_images(data / "real"), crop=None)[0]
    sets = {name: load_images(list_images(data / name), crop=None)[0] for name in [generator, *targets]}
    feats = {name: features(images, store) for name, images in sets.items()}
    feats["real"] = features(real_images, store)
    feats["pool"] = features(build_pool(256).images, store)
    scenes = np.array([group_of(Path(im.source).name) for im in real_images])
    cells: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for seed in (0, 1, 2):
        rng = np.random.default_rng(seed)
        unique = np.unique(scenes)
        fit_scene = np.isin(scenes, rng.permutation(unique)[: len(unique) // 2])
        fit_real = rng.permutation(np.flatnonzero(fit_scene))[:64]
        held_out = np.flatnonzero(~fit_scene)
        fit_fake = rng.permutation(len(sets[generator]))[:64]
        for which in INPUTS:
            x_real = np.concatenate(
                [np.r_[pick(feats["real"][q], which, fit_real), pick(feats["pool"][q], which)] for q in QUALITIES]
            )
            x_fake = np.concatenate([pick(feats[generator][q], which, fit_fake) for q in QUALITIES])
            lda = discriminant()
            lda.fit(np.r_[x_real, x_fake], np.r_[np.zeros(len(x_real)), np.ones(len(x_fake))])
            for quality in QUALITIES:
                real = lda.decision_function(pick(feats["real"][quality], which, held_out))
                for target in targets:
                    fake = lda.decision_function(pick(feats[target][quality], which))
                    auc = roc_auc_score(np.r_[np.zeros(len(real)), np.ones(len(fake))], np.r_[real, fake])
                    share = float(np.mean(fake > np.quantile(real, 0.9)))
                    cells.setdefault((target, quality, which), []).append((auc, share))
    print("| pair | JPEG | the discriminant reads | AUC, mean of 3 seeds | flagged at the oracle 10% cut, mean |")
    print("|---|---|---|---|---|")
    for (target, quality, which), values in cells.items():
        auc, share = np.mean(values, axis=0)
        print(f"| {generator} → {target} | {quality} | {which} | {auc:.3f} | {share:.1%} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3].split(","))
