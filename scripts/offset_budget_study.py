"""Off-grid images: share the false-positive budget as cards do, or split it? Measured, not adopted.

For the robustness bench's `plain+offsets` cards of GENERATOR (``<generator>.dif.none-plain+offsets.s0..2`` in
STORE_DIR, made by step 5 of ``scripts/robustness_bench.sh``), on each TARGET set and on the real photos held out
of fitting and calibration, clean, shifted by one pixel and cropped at a random offset, this prints the balanced
accuracy, the share of TARGET flagged and the held-out real photos flagged, of two rules for an image whose
pattern sits off the grid:
  * ``shared`` (``api.share_offset_budget``, the default): off the grid when ``phase`` exceeds its no-roll
    value at all; flagged when plain (the card's cut) or ``phase`` flags it, ``phase``'s cut (its own, on the
    pool) raised until, on the reference pool, the pair flags nothing plain does not;
  * ``split`` (built in commit 3a82739 and reverted, docs/RESULTS.md): off the grid when ``phase`` exceeds its
    no-roll value by MARGIN; flagged when plain passes a stricter cut (the card's, or the 1 - target / 4
    quantile of plain among the pool's off-grid photos if higher) or ``phase`` passes the lowest cut at which
    the pair still flags at most the target share of the pool's off-grid photos, and at least its own cut.
    Each reading's cut is set among the photos it reads, so an off-grid image is not judged by plain's clean
    cut (which flags 5.5-6.6% of shifted `real/` copies, against 0-2.7% of aligned ones).
Both rules are computed here from the card's plain fit and its offset reading's own cut, so the study does
not depend on which rule the stored card was calibrated with.
Usage: python3 scripts/offset_budget_study.py DATA_ROOT GENERATOR TARGET[,TARGET...] [STORE_DIR]
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.api import offset_reading_of, rho_for
from engine.data.images import list_images, load_images
from engine.data.perturb import perturb
from engine.data.reference_pool import build_pool
from engine.storage.store import Store

MARGIN = 0.05  # phase above its no-roll value (periodic-part correlation): picked from 0, 0.02, 0.05 on these sets
COPIES = ("none", "shift1", "crop-random")


def split_cuts(
    plain: np.ndarray, phase: np.ndarray, card_cut: float, own_cut: float, target: float
) -> tuple[float, float]:
    """(plain's cut, phase's cut) for off-grid images, from the off-grid reference photos' two scores."""
    plain_cut = max(card_cut, float(np.quantile(plain, 1.0 - target / 4.0, method="higher")))
    allowed = int(np.floor(target * len(phase)))
    phase_cut = float(np.max(phase)) + 1e-9
    for cut in np.sort(phase)[::-1]:  # lower phase's cut while the pair stays within the budget
        if np.sum((plain > plain_cut) | (phase >= cut)) > allowed:
            break
        phase_cut = float(cut)
    return plain_cut, max(own_cut, phase_cut)


def main(data: Path, generator: str, targets: list[str], store_dir: Path) -> None:
    store = Store(store_dir)
    pool = build_pool(256).images
    real_all = load_images(list_images(data / "real"), crop=None)[0]
    sets = {t: load_images(list_images(data / t), crop=None)[0] for t in targets}
    rows: dict[tuple[str, str], list] = {}
    for seed in (0, 1, 2):
        fp = store.load(f"{generator}.dif.none-plain+offsets.s{seed}")
        offset = offset_reading_of(fp)
        readings = [fp, offset, replace(offset, config={**offset.config, "correlation": "phase-grid"})]
        used = set(fp.train_files["real"]) | set(fp.calibration_set["real"])
        held_out = [im for im in real_all if im.sha256 not in used]
        reference = rho_for(readings, pool, store)
        off_grid = reference[:, 1] > reference[:, 2] + MARGIN
        target = float(fp.decision.get("target_fpr", 0.02))
        own = float(offset.decision["shared_with_plain"]["own_threshold"])
        plain_cut, phase_cut = split_cuts(reference[off_grid, 0], reference[off_grid, 1], fp.threshold, own, target)
        spare = reference[(reference[:, 1] > reference[:, 2] + 1e-6) & (reference[:, 0] <= fp.threshold), 1]
        shared_cut = max(own, float(spare.max())) if spare.size else own

        def flags(rho: np.ndarray) -> np.ndarray:
            plain = rho[:, 0] > fp.threshold
            shared = plain | ((rho[:, 1] > rho[:, 2] + 1e-6) & (rho[:, 1] > shared_cut))
            split = np.where(rho[:, 1] > rho[:, 2] + MARGIN, (rho[:, 0] > plain_cut) | (rho[:, 1] > phase_cut), plain)
            return np.stack([shared, split], axis=1)

        for copy in COPIES:
            real = flags(rho_for(readings, perturb(held_out, copy), store)).mean(axis=0)
            for name, images in sets.items():
                generated = flags(rho_for(readings, perturb(images, copy), store)).mean(axis=0)
                rows.setdefault((name, copy), []).append(np.stack([(generated + 1 - real) / 2, generated, real]))
        print(f"seed {seed} done", file=sys.stderr, flush=True)
    print("| pair | copy | shared | split | held-out real flagged: shared / split |")
    print("|---|---|---|---|---|")
    for (name, copy), values in rows.items():
        (shared, split), (flagged_shared, flagged_split), (real_shared, real_split) = np.mean(values, axis=0)
        print(
            f"| `{generator}/` → `{name}/` | {copy} | {shared:.3f} ({flagged_shared:.1%}) "
            f"| {split:.3f} ({flagged_split:.1%}) | {real_shared:.1%} / {real_split:.1%} |",
            flush=True,
        )


if __name__ == "__main__":
    args = sys.argv[1:]
    store_dir = Path(args[3] if len(args) > 3 else "docs/results/robustness/store")
    main(Path(args[0]), args[1], args[2].split(","), store_dir)
