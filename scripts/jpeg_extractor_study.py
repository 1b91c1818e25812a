"""Which denoiser should feed the JPEG reader? (docs/RESULTS.md, "Robustness", "Which residual")

The JPEG reader (engine/method/jpeg_reader.py) is a linear discriminant over the DCT of the residual's
3 x 8 x 8 periodic part and the file's coefficient sign leans. Its residual comes from the card's
extractor (ffdnet-s5 by default). This study refits it from each EXTRACTOR's residuals, the rest as
the card fits it: 64 real photos (from half of the real set's scenes) and the reference pool against
64 images of GENERATOR, all re-saved at QUALITY (default 75). It prints, mean of 3 splits, the AUC
against the real photos of the other scenes re-saved alike, and the share of each TARGET flagged at
oracle cuts placed after the fact at 2% and 10% of those photos: the most any calibration can give.
A set of another generator as TARGET (``dalle-mini``) shows how much of it each residual claims.
Usage: python3 scripts/jpeg_extractor_study.py DATA_ROOT GENERATOR TARGET[,TARGET...] EXTRACTOR[,...] [QUALITY]
Residuals are cached (DIF_CACHE_DIR): a cold run costs one pass of each extractor over every set.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from engine.api import residuals_of
from engine.data.images import LoadedImage, list_images, load_images
from engine.data.perturb import perturb
from engine.data.reference_pool import build_pool
from engine.method.jpeg_coefficients import sign_leans
from engine.method.jpeg_reader import discriminant, periodic_features
from engine.storage.store import Store

FIT_SIZE = 64
CUTS = (0.02, 0.10)


def features(images: list[LoadedImage], extractor: str, quality: int, store: Store) -> np.ndarray:
    """The reader's features of ``images`` re-saved at ``quality``: periodic DCT and sign leans."""
    copies = perturb(images, f"jpeg{quality}")
    return np.c_[periodic_features(residuals_of(copies, extractor, 256, 8, store)), sign_leans(copies)]


def scene_of(image: LoadedImage) -> str:
    """The real set's tiles are named <scene>_<row>_<col>: tiles of one scene must not straddle a split."""
    return Path(image.source).stem.rsplit("_", 2)[0]


def main(data: Path, generator: str, targets: list[str], extractors: list[str], quality: int) -> None:
    store = Store()
    real = load_images(list_images(data / "real"), crop=None)[0]
    sets = {name: load_images(list_images(data / name), crop=None)[0] for name in [generator, *targets]}
    pool = build_pool(256).images
    scenes = np.array([scene_of(im) for im in real])
    unique = np.unique(scenes)
    print(f"| residual | target | AUC | flagged at {CUTS[0]:.0%} | flagged at {CUTS[1]:.0%} |")
    print("|---|---|---|---|---|")
    for extractor in extractors:
        named = {**sets, "real": real, "pool": pool}
        feats = {name: features(images, extractor, quality, store) for name, images in named.items()}
        rows: dict[str, list] = {}
        for seed in (0, 1, 2):
            rng = np.random.default_rng(seed)
            fit_scenes = np.isin(scenes, rng.permutation(unique)[: len(unique) // 2])
            fit_real = rng.permutation(np.flatnonzero(fit_scenes))[:FIT_SIZE]
            fit_fake = rng.permutation(len(feats[generator]))[:FIT_SIZE]
            negatives = np.r_[feats["real"][fit_real], feats["pool"]]
            x = np.r_[negatives, feats[generator][fit_fake]]
            y = np.r_[np.zeros(len(negatives)), np.ones(FIT_SIZE)]
            reader = discriminant().fit(x, y)
            held_out = reader.decision_function(feats["real"][~fit_scenes])
            for target in targets:
                scores = reader.decision_function(feats[target])
                auc = roc_auc_score(np.r_[np.zeros(len(held_out)), np.ones(len(scores))], np.r_[held_out, scores])
                shares = [float(np.mean(scores > np.quantile(held_out, 1 - c))) for c in CUTS]
                rows.setdefault(target, []).append([auc, *shares])
        for target, values in rows.items():
            auc, *shares = np.mean(values, axis=0)
            cells = " | ".join(f"{s:.1%}" for s in shares)
            print(f"| {extractor} | `{target}/` | {auc:.3f} | {cells} |", flush=True)


if __name__ == "__main__":
    if len(sys.argv) not in (5, 6):
        sys.exit(__doc__.split("Usage: ")[1].split("\n")[0])
    args = sys.argv[1:]
    main(Path(args[0]), args[1], args[2].split(","), args[3].split(","), int(args[4]) if len(args) > 4 else 75)
