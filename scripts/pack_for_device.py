"""The folders scripts/bench_gpu.sh reads, small enough to travel to a GPU machine (64 MiB there).

Lossless WebP copies (the same pixels, 78% of the PNG bytes) of the shared sets: 240 of the 360
`real/` photos (every third dropped), all of `sd1/`, the first 100 of `sd1-b/`.
Usage: python3 scripts/pack_for_device.py DATA_ROOT OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

KEEP = {"real": lambda i: i % 3 != 2, "sd1": lambda i: True, "sd1-b": lambda i: i < 100}


def main(data: Path, out: Path) -> None:
    for name, keep in KEEP.items():
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for i, path in enumerate(sorted((data / name).glob("*.png"))):
            target = folder / f"{path.stem}.webp"
            if keep(i) and not target.exists():
                Image.open(path).convert("RGB").save(target, "WEBP", lossless=True, quality=100, method=6)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
