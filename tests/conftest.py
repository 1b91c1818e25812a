"""Shared test data made by the project itself: real photo tiles and a tiny CNN generator's images.

Real photos: scikit-image ships a few camera photographs inside its wheel; they are tiled.
Generated: a small decoder with a transposed-convolution up-sampling layer (fixed seed) turns
down-sampled real tiles back into full-size images, leaving the periodic traces real generators leave.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

# at most 2 threads, fewer when OMP_NUM_THREADS says so (two spinning thread pools on a shared
# 2-core machine can be many times slower than one)
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1, int(os.environ.get("OMP_NUM_THREADS") or 2))))

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def photo_tiles(size: int, names=PHOTOS, per_photo: int | None = None) -> list[tuple[str, np.ndarray]]:
    """Non-overlapping size x size tiles of scikit-image's bundled photos, named <photo>_<row>_<col>."""
    from skimage import data

    out = []
    for name in names:
        img = getattr(data, name)()
        rows, cols = img.shape[0] // size, img.shape[1] // size
        tiles = [
            (
                f"{name}_{r:02d}_{c:02d}",
                np.ascontiguousarray(img[r * size : (r + 1) * size, c * size : (c + 1) * size, :3]),
            )
            for r in range(rows)
            for c in range(cols)
        ]
        tiles = [(n, t) for n, t in tiles if t.std() > 8]
        out.extend(tiles[:per_photo] if per_photo else tiles)
    return out


class TinyGenerator(torch.nn.Module):
    """Down-sample, then a conv / transposed-conv decoder adds its up-sampling traces to the image."""

    def __init__(self, seed: int = 0, width: int = 16, strength: float = 0.06):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.enc = torch.nn.Conv2d(3, width, 3, padding=1)
        self.up = torch.nn.ConvTranspose2d(width, width, 4, stride=2, padding=1)
        self.dec = torch.nn.Conv2d(width, 3, 3, padding=1)
        for p in self.parameters():
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        self.strength = strength

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = torch.nn.functional.avg_pool2d(x, 2)
        base = torch.nn.functional.interpolate(low, scale_factor=2, mode="bilinear", align_corners=False)
        detail = self.dec(torch.relu(self.up(torch.relu(self.enc(low)))))
        return (base + self.strength * torch.tanh(detail)).clamp(0, 1)


def apply_generator(
    gen: TinyGenerator, tiles: list[tuple[str, np.ndarray]], prefix: str
) -> list[tuple[str, np.ndarray]]:
    """Run ``gen`` on each uint8 tile; outputs are named ``<prefix>-<tile name>``."""
    out = []
    for name, tile in tiles:
        x = torch.from_numpy(tile).permute(2, 0, 1).float().unsqueeze(0) / 255.0
        y = (gen(x)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        out.append((f"{prefix}-{name}", y))
    return out


def generate(tiles: list[tuple[str, np.ndarray]], seed: int = 0) -> list[tuple[str, np.ndarray]]:
    return apply_generator(TinyGenerator(seed), tiles, f"gen{seed}")


def tiny_train_args(dataset: dict[str, Path], cache: str | Path) -> list[str]:
    """``dif train`` options for the tiny data set: its folders, 64-px crops, wavelet residuals, a store."""
    return ["--real", str(dataset["real"]), "--fake", str(dataset["fake"]), "--crop", "64", "--border", "8",
            "--extractor", "wavelet", "--cache", str(cache)]  # fmt: skip


def write_pngs(folder: Path, items: list[tuple[str, np.ndarray]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in items:
        Image.fromarray(arr).save(folder / f"{name}.png")
    return folder


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> dict[str, Path]:
    """64x64 real tiles (astronaut, coffee: train side; chelsea, rocket: other scenes) and generated images."""
    root = tmp_path_factory.mktemp("tiny_dataset")
    real = photo_tiles(64)
    # generated images come from other photos' tiles than the real set uses, so content does not leak
    fake_src = [t for t in real if t[0].startswith(("astronaut", "rocket"))]
    real_only = [t for t in real if t[0].startswith(("coffee", "chelsea"))]
    write_pngs(root / "real", real_only)
    write_pngs(root / "fake", generate(fake_src, seed=0))
    return {"root": root, "real": root / "real", "fake": root / "fake"}


@pytest.fixture()
def store(tmp_path):
    from engine.storage.store import Store

    s = Store(tmp_path / "store")
    yield s
    s.close()
