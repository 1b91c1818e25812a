"""Watermark-matched training: the fingerprint must learn the generator, not the front end's watermark.

The reference Stable Diffusion scripts mark every image with a DWT-DCT watermark. Trained on such
images against unmarked photos, a fingerprint can separate the classes by the mark alone; it then
misses the same model's unmarked images and flags marked photos. When the generated training images
carry a known watermark, the same mark is embedded into the real training images, so the mark no
longer separates the two classes and the fingerprint has to use what is left: the model's traces.

Marking imitates the generator's pipeline: the reference scripts mark a whole 512x512 output, and
our images are centre crops of such outputs, so a real image smaller than that is reflect-padded to
512x512 (the crop stays aligned with the 8-pixel watermark blocks), marked, and cropped back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from engine.data.images import LoadedImage, derived
from engine.provenance.watermark import MISSING, SD_GENERATOR, embed_sd_watermark, read_sd_watermark

CANVAS = 512  # side of the reference SD scripts' output, where their watermark is embedded
MARKED_FRACTION = 0.5  # a training set "carries the watermark" when at least this share of images reads as marked
MAX_CHECKED = 24  # images read per set: enough to estimate a share of 0.8 vs 0.0, bounded cost (40-130 ms each)


@dataclass(frozen=True)
class WatermarkSurvey:
    """How many images of a set read as carrying a known watermark."""

    generator: str | None  # the known watermark found, when the share reaches MARKED_FRACTION
    marked: int
    checked: int
    unread: str = ""  # why no image could be read although some were large enough (the decoder is missing)

    @property
    def fraction(self) -> float:
        return self.marked / self.checked if self.checked else 0.0

    def to_dict(self) -> dict:
        record = {
            "generator": self.generator,
            "marked": self.marked,
            "checked": self.checked,
            "fraction": round(self.fraction, 4),
        }
        return {**record, "unread": self.unread} if self.unread else record


def survey(images: Sequence[LoadedImage], max_checked: int = MAX_CHECKED) -> WatermarkSurvey:
    """Read the known watermark from (up to ``max_checked``, evenly spread) images of a set."""
    if not images:
        return WatermarkSurvey(None, 0, 0)
    idx = np.linspace(0, len(images) - 1, min(len(images), max_checked)).round().astype(int)
    readings = [read_sd_watermark(images[i].pixels) for i in sorted(set(idx.tolist()))]
    usable = [r for r in readings if r.available]
    marked = sum(1 for r in usable if r.generator is not None)
    found = SD_GENERATOR if usable and marked / len(usable) >= MARKED_FRACTION else None
    unread = "" if usable else next((r.reason for r in readings if r.reason.startswith(MISSING)), "")
    return WatermarkSurvey(found, marked, len(usable), unread)


def mark_like_sd(pixels: np.ndarray) -> np.ndarray:
    """Embed the SD watermark as the reference scripts would have on a 512x512 output holding this image."""
    h, w = pixels.shape[:2]
    pad_y, pad_x = max(0, CANVAS - h), max(0, CANVAS - w)
    if not (pad_y or pad_x):
        return embed_sd_watermark(pixels)
    top, left = pad_y // 2 // 8 * 8, pad_x // 2 // 8 * 8  # keep the image on the watermark's 8-pixel block grid
    canvas = np.pad(
        pixels,
        ((top, pad_y - top), (left, pad_x - left), (0, 0)),
        mode="reflect" if min(h, w) > max(pad_y, pad_x) // 2 else "symmetric",
    )
    marked = embed_sd_watermark(canvas)
    return np.ascontiguousarray(marked[top : top + h, left : left + w])


def marked_copies(images: Sequence[LoadedImage]) -> list[LoadedImage]:
    """Copies of ``images`` carrying the SD watermark (new content hashes, so caches stay correct)."""
    out = []
    for im in images:
        pixels = mark_like_sd(im.pixels)
        out.append(derived(im, pixels, b"sd-watermark", "SD watermark embedded (watermark-matched training)"))
    return out


def mark_share(real: Sequence[LoadedImage], share: float, seed: int) -> list[LoadedImage]:
    """``real`` with a seeded ``share`` of the images replaced by SD-watermarked copies (at least one)."""
    n_marked = max(1, round(share * len(real)))
    chosen = set(np.random.default_rng(seed + 29).permutation(len(real))[:n_marked].tolist())
    marked = iter(marked_copies([im for i, im in enumerate(real) if i in chosen]))
    return [next(marked) if i in chosen else im for i, im in enumerate(real)]
