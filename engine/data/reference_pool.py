"""A broad pool of real photos to calibrate mu_real on, so that the false-positive rate holds on new scenes.

A fingerprint's mu_real measured on a few training photos (a handful of scenes) does not describe
real photos in general: scenes never seen in training can sit closer to mu_fake and be flagged.
The pool gives mu_real (and the real side of the calibrated band) many scenes to average over.

The default pool is built from photos the project can always get, each cut into 256x256 tiles the
way the developer data set was made (integer Lanczos downscale to a short side near 1100 px, tiles
on a centred grid, flat tiles skipped):

- 12 camera photographs shipped in the Debian wallpaper packages that ``scripts/install.sh``
  installs. They are the photographs of those packages that ``../shared/datasets/real`` does *not*
  use, so the pool never overlaps the benchmark's real test scenes;
- 4 colour photographs inside the scikit-image wheel (a dependency).

Missing files are skipped and reported; the card records which scenes were used. Users add their
own real photos with ``extend_pool`` (a folder; file names group into scenes as in splits.py).
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from engine.data.images import LoadedImage, content_hash, list_images, load_images
from engine.data.splits import group_of
from engine.errors import ConfigError

DEBIAN_ROOT = Path("/usr/share")
# (scene, path under /usr/share, Debian package): photographs not used by the shared benchmark set
DEBIAN_PHOTOS: tuple[tuple[str, str, str], ...] = (
    ("lomiri1604-Picture-0B", "backgrounds/Picture_0B_by_freespace.jpg", "lomiri-wallpapers-16.04"),
    ("lomiri1604-aitzgorri", "backgrounds/aitzgorri_by_Aitzol_Berasategi.jpg", "lomiri-wallpapers-16.04"),
    ("lomiri1604-greentock", "backgrounds/greentock_by_Peter_Nerlich.jpg", "lomiri-wallpapers-16.04"),
    ("lomiri1604-seeding", "backgrounds/seeding_by_Clements_Engelhardt.jpg", "lomiri-wallpapers-16.04"),
    ("mate-Aqua", "backgrounds/mate/nature/Aqua.jpg", "mate-backgrounds"),
    ("mate-FreshFlower", "backgrounds/mate/nature/FreshFlower.jpg", "mate-backgrounds"),
    ("mate-LadyBird", "backgrounds/mate/nature/LadyBird.jpg", "mate-backgrounds"),
    ("mate-TwoWings", "backgrounds/mate/nature/TwoWings.jpg", "mate-backgrounds"),
    ("plasma-BytheWater", "wallpapers/BytheWater/contents/images/2560x1600.jpg", "plasma-workspace-wallpapers"),
    ("plasma-DarkestHour", "wallpapers/DarkestHour/contents/images/2560x1600.jpg", "plasma-workspace-wallpapers"),
    ("plasma-Grey", "wallpapers/Grey/contents/images/2560x1600.jpg", "plasma-workspace-wallpapers"),
    ("plasma-Path", "wallpapers/Path/contents/images/2560x1600.jpg", "plasma-workspace-wallpapers"),
)
SKIMAGE_PHOTOS: tuple[str, ...] = ("astronaut", "chelsea", "coffee", "rocket")
TILE = 256
TARGET_SHORT_SIDE = 1100
MIN_TILE_STD = 8.0  # luminance std below this: a flat tile (sky, wall) says little about noise
TILES_PER_SCENE = 12


@dataclass
class ReferencePool:
    """Real images plus a record of where they came from (stored in the fingerprint card)."""

    images: list[LoadedImage] = field(default_factory=list)
    scenes: list[str] = field(default_factory=list)  # scene of each image
    sources: list[str] = field(default_factory=list)  # names of the pools merged in
    missing: list[str] = field(default_factory=list)  # default-pool files not found on this machine

    def summary(self) -> dict:
        return {
            "sources": list(self.sources),
            "n_images": len(self.images),
            "n_scenes": len(set(self.scenes)),
            "scenes": sorted(set(self.scenes)),
            "missing": list(self.missing),
        }

    def extend(self, other: "ReferencePool") -> "ReferencePool":
        return ReferencePool(
            self.images + other.images,
            self.scenes + other.scenes,
            self.sources + other.sources,
            self.missing + other.missing,
        )


def tiles_of(pixels: np.ndarray, tile: int = TILE, max_tiles: int = TILES_PER_SCENE) -> list[np.ndarray]:
    """Non-overlapping tiles on a centred grid after an integer downscale, flat ones skipped.

    The integer Lanczos downscale weakens the JPEG blocking of wallpaper files, as in the benchmark's
    real set; tiles are spread evenly over the photo so one region does not dominate a scene.
    """
    h, w = pixels.shape[:2]
    k = max(1, math.ceil(min(h, w) / TARGET_SHORT_SIDE))
    if k > 1:
        pixels = np.asarray(Image.fromarray(pixels).resize((w // k, h // k), Image.Resampling.LANCZOS))
        h, w = pixels.shape[:2]
    rows, cols = h // tile, w // tile
    top, left = (h - rows * tile) // 2, (w - cols * tile) // 2
    tiles = []
    for r in range(rows):
        for c in range(cols):
            t = pixels[top + r * tile : top + (r + 1) * tile, left + c * tile : left + (c + 1) * tile]
            luminance = t.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
            if luminance.std() >= MIN_TILE_STD:
                tiles.append(np.ascontiguousarray(t))
    if len(tiles) > max_tiles:
        keep = np.linspace(0, len(tiles) - 1, max_tiles).round().astype(int)
        tiles = [tiles[i] for i in keep]
    return tiles


def _tile_images(scene: str, source: str, pixels: np.ndarray, tile: int, max_tiles: int) -> list[LoadedImage]:
    out = []
    for i, t in enumerate(tiles_of(pixels, tile, max_tiles)):
        out.append(
            LoadedImage(
                t,
                f"{source}#tile{i}",
                content_hash(t.tobytes() + scene.encode()),
                (t.shape[1], t.shape[0]),
                "RGB",
                "pool",
            )
        )
    return out


def default_pool(tile: int = TILE, max_tiles: int = TILES_PER_SCENE, debian_root: Path = DEBIAN_ROOT) -> ReferencePool:
    """The built-in pool: Debian wallpaper photographs (when installed) and scikit-image photos."""
    pool = ReferencePool(sources=["default"])
    for scene, rel, package in DEBIAN_PHOTOS:
        path = debian_root / rel
        images, bad = load_images([path], crop=None) if path.is_file() else ([], [])
        if not images:
            pool.missing.append(f"{path} (Debian package {package})")
            continue
        tiles = _tile_images(scene, str(path), images[0].pixels, tile, max_tiles)
        pool.images += tiles
        pool.scenes += [scene] * len(tiles)
    from skimage import data

    for name in SKIMAGE_PHOTOS:
        pixels = np.ascontiguousarray(getattr(data, name)()[..., :3]).astype(np.uint8)
        tiles = _tile_images(f"skimage-{name}", f"skimage.data.{name}", pixels, tile, max_tiles)
        pool.images += tiles
        pool.scenes += [f"skimage-{name}"] * len(tiles)
    return pool


@functools.lru_cache(maxsize=4)
def cached_default_pool(tile: int = TILE) -> ReferencePool:
    """The default pool, built once per process and tile size (about 3 s to decode and tile)."""
    return default_pool(tile=tile)


def folder_pool(folder: str | Path, crop: int = TILE) -> ReferencePool:
    """A user's own real photos: each image centre-cropped; scenes from file names (``scene_r_c.png``)."""
    files = list_images(folder)
    images, bad = load_images(files, crop=crop)
    usable = [im for im in images if im.pixels.shape[:2] == (crop, crop)]
    return ReferencePool(
        usable, [group_of(im.source) for im in usable], [f"folder:{Path(folder).name}"], [str(e) for e in bad]
    )


def build_pool(crop: int = TILE, extra_dir: str | Path | None = None) -> ReferencePool:
    """The default pool at this crop, plus the user's folder of real photos when given."""
    pool = cached_default_pool(crop)
    if extra_dir:
        if not Path(extra_dir).is_dir():
            raise ConfigError(f"{extra_dir}: reference-pool folder not found")
        pool = pool.extend(folder_pool(extra_dir, crop))
    return pool


def images_pool(name: str, images: Sequence[LoadedImage], scenes: Sequence[str]) -> ReferencePool:
    """A pool from images already in memory (the benchmark's real training half, uploads)."""
    return ReferencePool(list(images), list(scenes), [name])


def excluding(pool: ReferencePool, sha256s: set[str]) -> ReferencePool:
    """The pool without given images: a photo must never be both a pool member and a test image."""
    keep = [i for i, im in enumerate(pool.images) if im.sha256 not in sha256s]
    return replace(pool, images=[pool.images[i] for i in keep], scenes=[pool.scenes[i] for i in keep])


def pool_id(pool: ReferencePool) -> str:
    """Content identity of a pool (what a cached calibration depends on)."""
    h = hashlib.sha256()
    for im in pool.images:
        h.update(im.sha256.encode())
    return h.hexdigest()[:16]
