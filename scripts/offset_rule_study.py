"""Reading an off-grid image also with ``phase``: what it would buy, measured before it is built.

For default fingerprints (dif train's defaults, N = 64, seeds 0-2) of GENERATOR, on TARGET and on
the real photos held out of fitting and calibration, clean, shifted by one pixel and cropped at a
random offset, this prints the balanced accuracy of:
  * ``plain``: today's reading, with the card's cut;
  * ``phase``: the same fit re-calibrated under ``phase`` (where the crop starts does not change it);
  * ``either``: flagged when ``plain`` flags it, or when the image's periodic pattern sits off the
    8-pixel grid (``phase`` above ``phase-grid``, its no-roll value, as ``api.with_readings`` tests it)
    and ``phase`` flags it;
  * ``shared``: ``either`` with the card's false-positive budget shared: ``phase``'s cut raised until it
    flags none of the reference photos (the reference pool and the calibration real photos, clean) that
    are off the grid and that ``plain`` leaves unflagged, so on those photos the union flags what
    ``plain`` flags.
Also the share of TARGET whose best roll is the no-roll one, and what each reading flags of the
held-out real photos. Usage: python3 scripts/offset_rule_study.py DATA_ROOT GENERATOR TARGET [STORE_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from engine.api import OFF_GRID_MARGIN, residuals_of, train_from_folders
from engine.data.images import list_images, load_images
from engine.data.perturb import perturb
from engine.data.reference_pool import build_pool
from engine.method.config import TrainConfig
from engine.method.correlation import rho_matrix
from engine.method.detect import decide
from engine.storage.store import Store


def main(data: Path, generator: str, target: str, store_dir: Path) -> None:
    store, pool = Store(store_dir), build_pool(256)
    real_all = load_images(list_images(data / "real"), crop=None)[0]
    target_images = load_images(list_images(data / target), crop=None)[0]
    print(
        "| pair | seed | copy | plain | phase | either | shared | target at no roll "
        "| real flagged: plain / phase / either / shared |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    by_hash = {im.sha256: im for im in real_all}
    for seed in (0, 1, 2):
        plain = train_from_folders(
            f"{generator}-s{seed}",
            data / "real",
            data / generator,
            TrainConfig(seed=seed),
            64,
            store,
            reference_pool=pool,
        )["fingerprint"]
        phase = train_from_folders(
            f"{generator}-s{seed}-phase",
            data / "real",
            data / generator,
            TrainConfig(seed=seed, correlation="phase"),
            64,
            store,
            reference_pool=pool,
        )["fingerprint"]
        used = set(plain.train_files["real"]) | set(plain.calibration_set["real"])
        sets = {"target": target_images, "real": [im for im in real_all if im.sha256 not in used]}
        tensor = plain.tensor.float().unsqueeze(0)

        def read(images: list, copy: str) -> tuple:
            res = residuals_of(perturb(images, copy), plain.extractor, plain.crop, plain.border, store).float()
            by_plain = decide(rho_matrix(res, tensor)[:, 0].numpy(), plain.mu_real, plain.mu_fake, plain.threshold)
            rho_phase = rho_matrix(res, tensor, "phase")[:, 0].numpy()
            off_grid = rho_phase > rho_matrix(res, tensor, "phase-grid")[:, 0].numpy() + OFF_GRID_MARGIN
            return by_plain, rho_phase, off_grid

        reference = [im for im in pool.images if min(im.pixels.shape[:2]) >= plain.crop]
        reference += [by_hash[h] for h in plain.calibration_set["real"]]
        ref_plain, ref_phase, ref_off = read(reference, "none")
        spare = ref_phase[ref_off & ~ref_plain]  # photos the union must leave as plain leaves them
        shared_cut = max(phase.threshold, float(spare.max()) if spare.size else -np.inf)
        for copy in ("none", "shift1", "crop-random"):
            flagged, at_no_roll = {}, {}
            for key, images in sets.items():
                by_plain, rho_phase, off_grid = read(images, copy)
                by_phase = decide(rho_phase, phase.mu_real, phase.mu_fake, phase.threshold)
                either = by_plain | (off_grid & by_phase)
                shared = by_plain | (off_grid & (rho_phase > shared_cut))
                flagged[key] = [by_plain.mean(), by_phase.mean(), either.mean(), shared.mean()]
                at_no_roll[key] = 1 - off_grid.mean()
            acc = [(flagged["target"][k] + 1 - flagged["real"][k]) / 2 for k in range(4)]
            reals = " / ".join(f"{v:.1%}" for v in flagged["real"])
            print(
                f"| {generator} → {target} | {seed} | {copy} | {' | '.join(f'{a:.3f}' for a in acc)} "
                f"| {at_no_roll['target']:.1%} | {reals} |",
                flush=True,
            )


if __name__ == "__main__":
    args = sys.argv[1:]
    main(Path(args[0]), args[1], args[2], Path(args[3] if len(args) > 3 else "artifacts/offset-rule-store"))
