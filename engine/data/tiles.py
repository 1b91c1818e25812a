"""Which parts of a suspect image are analysed: one centre crop, or a spread of tiles over a large image.

A fingerprint is a crop x crop pattern, so one crop of a large image uses a fraction of the evidence
(a 1024 x 1024 image holds 16 crops of 256). Scoring several tiles and averaging their correlations
lowers the noise of the estimate without changing what a single tile means, so the cut calibrated on
single crops stays valid (and errs on the side of flagging fewer real photos).

Tiles start on multiples of 8 pixels from the image origin: up-sampling generators leave a pattern
with an 8-pixel period anchored at the origin, and a tile that starts elsewhere would see it shifted.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Sequence

from engine.data.images import LoadedImage, center_crop, content_hash

Box = tuple[int, int, int, int]  # top, left, height, width in the decoded image's pixels
GRID = 8
DEFAULT_MAX_TILES = 9


def centre_box(height: int, width: int, crop: int) -> Box:
    """The box ``center_crop`` takes; along a side shorter than the crop, the whole side (it is padded)."""
    h, w = min(crop, height), min(crop, width)
    return ((height - h) // 2, (width - w) // 2, h, w)


def _positions(size: int, crop: int, count: int) -> list[int]:
    if count <= 1:
        centre = (size - crop) // 2
        return [centre - centre % GRID]
    spread = [round(i * (size - crop) / (count - 1)) for i in range(count)]
    return sorted({p - p % GRID for p in spread})


def tile_boxes(height: int, width: int, crop: int, max_tiles: int = DEFAULT_MAX_TILES) -> list[Box]:
    """Boxes to analyse: the centre crop when the image holds fewer than two crops along both axes or
    ``max_tiles`` is 1, else an even spread of at most ``max_tiles`` whole, non-wrapping crops."""
    per_axis = max(1, math.isqrt(max(1, max_tiles)))
    rows, cols = min(per_axis, height // crop), min(per_axis, width // crop)
    if max_tiles <= 1 or (rows <= 1 and cols <= 1):
        return [centre_box(height, width, crop)]
    return [(top, left, crop, crop) for top in _positions(height, crop, rows) for left in _positions(width, crop, cols)]


def tiles_of(
    images: Sequence[LoadedImage], crop: int, max_tiles: int = DEFAULT_MAX_TILES, pad: bool = False
) -> tuple[list[LoadedImage], list[int], list[list[Box]]]:
    """Expand images into their tiles: (tile images, owner index per tile, boxes per image).

    A tile that is the centre crop keeps the file's hash, so its cached residual is the one a
    single-crop analysis made; other tiles get a hash naming their box.
    """
    tiles: list[LoadedImage] = []
    owners: list[int] = []
    boxes: list[list[Box]] = []
    for i, im in enumerate(images):
        h, w = im.pixels.shape[:2]
        these = tile_boxes(h, w, crop, max_tiles)
        centre = centre_box(h, w, crop)
        for box in these:
            top, left, bh, bw = box
            grid = ((im.jpeg_grid[0] - top) % GRID, (im.jpeg_grid[1] - left) % GRID)  # the JPEG blocks, from the tile
            if box == centre:
                notes = list(im.notes)
                pixels = center_crop(im.pixels, crop, pad=pad, name=im.source, notes=notes)
                tiles.append(replace(im, pixels=pixels, notes=tuple(notes), jpeg_grid=grid))
            else:
                pixels = im.pixels[top : top + bh, left : left + bw].copy()
                tiles.append(
                    replace(
                        im,
                        pixels=pixels,
                        sha256=content_hash(f"{im.sha256}|tile|{top},{left},{bh}".encode()),
                        jpeg_grid=grid,
                    )
                )
            owners.append(i)
        boxes.append(these)
    return tiles, owners, boxes
