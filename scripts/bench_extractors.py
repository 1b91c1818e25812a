"""Residual extractor speed: milliseconds per image for each extractor and thread count.

    python scripts/bench_extractors.py [--extractors ffdnet-s5,wavelet,dncnn] [--threads 1,2] [--images 16] [--crop 256]
                                       [--device cuda]

Images are scikit-image photos cut to the crop (shipped in its wheel), so anyone can rerun it. One
warm-up batch per setting is not timed. Timings on a shared machine are noisy: compare ratios
within one run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def photo_batch(n: int, crop: int) -> torch.Tensor:
    """N x 3 x crop x crop in [0, 1] from scikit-image's colour photos (tiles, repeated as needed)."""
    from skimage import data, transform

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    tiles = []
    for img in photos:
        if min(img.shape[:2]) < crop:
            img = (transform.resize(img, (crop, crop * img.shape[1] // img.shape[0]), anti_aliasing=True) * 255).astype(
                np.uint8
            )
        tiles.append(img[:crop, :crop, :3])
    stack = np.stack([tiles[i % len(tiles)] for i in range(n)]).astype(np.float32) / 255.0
    return torch.from_numpy(stack).permute(0, 3, 1, 2).contiguous()


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a timer measures the work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extractors", default="ffdnet-s5,wavelet,dncnn")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda to time the GPU path (threads then only feed it)")
    args = parser.parse_args()
    from engine.residuals.registry import get_extractor

    images = photo_batch(args.images, args.crop)
    print(f"| extractor | device | threads | ms per {args.crop}x{args.crop} image |")
    print("|---|---|---|---|")
    for name in args.extractors.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            device = torch.device(args.device)
            extractor = get_extractor(name, device)
            extractor(images[: args.batch], batch_size=args.batch)  # warm-up
            synchronize(device)
            start = time.perf_counter()
            extractor(images, batch_size=args.batch)
            synchronize(device)
            ms = 1000 * (time.perf_counter() - start) / len(images)
            print(f"| {name} | {args.device} | {threads} | {ms:.1f} |", flush=True)


if __name__ == "__main__":
    main()
