"""Train the shipped DnCNN weights on Debian wallpaper photos (see docs/METHOD.md, "The denoisers").

Uses the 12 photos of mate-backgrounds, lomiri-wallpapers-16.04 and plasma-workspace-wallpapers
that are NOT among the 25 scenes of the developers' real-photo test tiles, so the denoiser never
saw a test photo. Two of them are held out for the PSNR card.

    apt-get install mate-backgrounds plasma-workspace-wallpapers lomiri-wallpapers-16.04
    python scripts/train_denoiser.py --steps 3000 --max-minutes 55
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from engine.residuals.train_dncnn import DenoiserTrainConfig, train_dncnn

TRAIN = [
    "/usr/share/backgrounds/Picture_0B_by_freespace.jpg",
    "/usr/share/backgrounds/aitzgorri_by_Aitzol_Berasategi.jpg",
    "/usr/share/backgrounds/greentock_by_Peter_Nerlich.jpg",
    "/usr/share/backgrounds/seeding_by_Clements_Engelhardt.jpg",
    "/usr/share/backgrounds/mate/nature/Aqua.jpg",
    "/usr/share/backgrounds/mate/nature/FreshFlower.jpg",
    "/usr/share/backgrounds/mate/nature/TwoWings.jpg",
    "/usr/share/wallpapers/BytheWater/contents/images/2560x1600.jpg",
    "/usr/share/wallpapers/DarkestHour/contents/images/2560x1600.jpg",
    "/usr/share/wallpapers/Grey/contents/images/2560x1600.jpg",
]
HOLDOUT = [
    "/usr/share/backgrounds/mate/nature/LadyBird.jpg",
    "/usr/share/wallpapers/Path/contents/images/2560x1600.jpg",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="engine/residuals/weights/dncnn_color.safetensors")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    missing = [p for p in TRAIN + HOLDOUT if not Path(p).exists()]
    if missing:
        sys.exit(f"missing photo {missing[0]}: install the Debian wallpaper packages named in this script's docstring")
    config = DenoiserTrainConfig(steps=args.steps, batch=args.batch, max_minutes=args.max_minutes, seed=args.seed)

    def report(step: int, total: int, loss: float) -> None:
        if step % 25 == 0 or step == total:
            print(f"step {step}/{total} loss {loss:.3e}", flush=True)

    card = train_dncnn([Path(p) for p in TRAIN], [Path(p) for p in HOLDOUT], Path(args.out), config, report)
    print(card["psnr_holdout"])


if __name__ == "__main__":
    main()
