"""What the upscaled reading does, reading by reading, on the robustness bench's cards.

For the plain DIF cards of GENERATOR (``<generator>.dif.s0..2`` in STORE_DIR, made by
``scripts/robustness_bench.sh``), on TARGET and on the real photos held out of fitting and calibration,
clean, as half-size copies enlarged back (``scale0.5``, bicubic) and enlarged by pixel repetition
(``resize``), this prints the share of images that look upscaled and the balanced accuracy (generated /
real flagged) of:
  * ``plain``: the fingerprint with its own cut, as before the upscaled reading;
  * ``reader alone``: an image that looks upscaled read with the upscaled reading alone (the first version);
  * ``surer``: an image that looks upscaled read both ways, the higher signed score deciding;
  * ``dif detect``: what it does now: the reader alone on a pixel-repetition enlargement (no photo repeats
    its pixels), the surer reading on an image that looks interpolated up.
Usage: python3 scripts/upscaled_reading_study.py DATA_ROOT GENERATOR TARGET [STORE_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from engine.api import reading_of, rho_for
from engine.data.conditions import upscale_kind
from engine.data.images import list_images, load_images
from engine.data.perturb import perturb
from engine.method.detect import scores_and_decisions
from engine.storage.store import Store


def main(data: Path, generator: str, target: str, store_dir: Path) -> None:
    store = Store(store_dir)
    real_all = load_images(list_images(data / "real"), crop=None)[0]
    target_images = load_images(list_images(data / target), crop=None)[0]
    rows: dict[str, list] = {}
    for seed in (0, 1, 2):
        fp = store.load(f"{generator}.dif.s{seed}")
        upscaled = reading_of(fp, "upscaled")
        used = set(fp.train_files["real"]) | set(fp.calibration_set["real"])
        held_out = [im for im in real_all if im.sha256 not in used]
        for copy in ("none", "scale0.5", "resize"):
            flagged, enlarged_share = [], []
            for images in (target_images, held_out):
                images = perturb(images, copy)
                kinds = [upscale_kind(im.pixels) for im in images]
                enlarged = np.array([kind is not None for kind in kinds])
                repeated = np.array([kind == "repeated" for kind in kinds])
                rho = rho_for([fp, upscaled], images, store)
                plain_score, by_plain = scores_and_decisions(fp, rho[:, 0])
                reader_score, by_reader = scores_and_decisions(upscaled, rho[:, 1])
                reader_alone = np.where(enlarged, by_reader, by_plain)
                surer = np.where(enlarged & (reader_score > plain_score), by_reader, by_plain)
                now = np.where(repeated, by_reader, surer)
                flagged.append([by_plain.mean(), reader_alone.mean(), surer.mean(), now.mean()])
                enlarged_share.append(enlarged.mean())
            rows.setdefault(copy, []).append(np.r_[enlarged_share, np.ravel(flagged)])
    print("| pair | copy | look upscaled: generated / real | plain | reader alone | surer | dif detect |")
    print("|---|---|---|---|---|---|---|")
    for copy, values in rows.items():
        m = np.mean(values, axis=0)
        cells = [f"{(g + 1 - r) / 2:.3f}: {g:.1%} / {r:.1%}" for g, r in zip(m[2:6], m[6:10])]
        print(f"| {generator} → {target} | {copy} | {m[0]:.1%} / {m[1]:.1%} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(Path(args[0]), args[1], args[2], Path(args[3] if len(args) > 3 else "docs/results/robustness/store"))
