"""Real photos the zoo can always get: scikit-image's bundled images, cut into tiles.

No download is ever needed: only the images that ship inside scikit-image's wheel are used, so the
zoo is the same on every machine with the same scikit-image. Each photo belongs to exactly one pool,
so the generators' training photos, their fine-tuning photos and the demo photos never overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# pool -> scikit-image loaders (all bundled, no pooch download). Gray photos are repeated on 3 channels.
POOLS: dict[str, tuple[str, ...]] = {
    "base": ("astronaut", "coffee", "rocket", "camera", "grass"),  # the base model's training photos
    "other": ("hubble_deep_field", "immunohistochemistry", "brick", "gravel"),  # fine-tune on other photos
    "third": ("retina", "clock", "coins"),  # fine-tune of a fine-tune
    "demo": ("chelsea", "cell", "moon", "colorwheel", "page", "text"),  # held out: fingerprint real/generated tiles
}


@dataclass(frozen=True)
class Tile:
    """One crop of a bundled photo; ``name`` is unique and groups tiles of one photo (``<photo>_<r>_<c>``)."""

    name: str
    pixels: np.ndarray  # H x W x 3 uint8


def load_photo(name: str) -> np.ndarray:
    """A bundled scikit-image photo as H x W x 3 uint8."""
    import skimage.data

    arr = np.asarray(getattr(skimage.data, name)())
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return np.ascontiguousarray(arr[:, :, :3].astype(np.uint8))


def tiles(photo: str, size: int) -> list[Tile]:
    """Non-overlapping ``size`` x ``size`` tiles of one photo, row-major."""
    arr = load_photo(photo)
    rows, cols = arr.shape[0] // size, arr.shape[1] // size
    return [
        Tile(f"{photo}_{r}_{c}", arr[r * size : (r + 1) * size, c * size : (c + 1) * size].copy())
        for r in range(rows)
        for c in range(cols)
    ]


def pool_tiles(pool: str, size: int) -> list[Tile]:
    """All tiles of a pool's photos, in a fixed order."""
    return [t for photo in POOLS[pool] for t in tiles(photo, size)]


def pool_arrays(pool: str, size: int) -> np.ndarray:
    """A pool's tiles stacked as N x size x size x 3 uint8 (the generators' training data)."""
    return np.stack([t.pixels for t in pool_tiles(pool, size)])


def interleave(items: list[Tile], seed: int) -> list[Tile]:
    """A seeded shuffle (so a prefix mixes photos instead of taking one photo's tiles)."""
    order = np.random.default_rng(seed).permutation(len(items))
    return [items[i] for i in order]
