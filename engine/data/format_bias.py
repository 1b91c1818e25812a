"""Format bias guard: when file format or size alone separates the classes, a detector learns that.

Real photos collected from the web are mostly JPEG; a generator's images are mostly PNG at one
native size. A fingerprint trained on such folders can separate them by JPEG blocking or by
resampling traces, and then flags every real PNG and misses every re-saved generated image (the
"Fake or JPEG?" bias, about 11 points in the literature). ``dif train`` reports it and offers to
re-save both classes the same way (``--resave-jpeg Q``).
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Sequence

from engine.data.images import LoadedImage, derived
from engine.data.perturb import jpeg

JPEG_SHARE_GAP = 0.5  # difference in the share of JPEG files between the classes that counts as a bias
SIZE_RATIO = 1.25  # ratio of median short sides that counts as a systematic size difference


def _jpeg_share(images: Sequence[LoadedImage]) -> float:
    return sum(1 for im in images if (im.format or "").upper() in ("JPEG", "MPO")) / max(1, len(images))


def _median_short_side(images: Sequence[LoadedImage]) -> float:
    return statistics.median(min(im.original_size) for im in images) if images else 0.0


def _formats(images: Sequence[LoadedImage]) -> str:
    """The three commonest file formats, counted: "60 JPEG, 4 PNG"."""
    return ", ".join(f"{n} {k}" for k, n in Counter((im.format or "?").upper() for im in images).most_common(3))


def format_warnings(real: Sequence[LoadedImage], fake: Sequence[LoadedImage]) -> list[str]:
    """One line per systematic difference in format or size between the real and generated images."""
    if not real or not fake:
        return []
    out = []
    share_r, share_f = _jpeg_share(real), _jpeg_share(fake)
    if abs(share_r - share_f) >= JPEG_SHARE_GAP:
        out.append(
            f"format bias: {share_r:.0%} of the real training images are JPEG ({_formats(real)}) but {share_f:.0%} "
            f"of the generated ones ({_formats(fake)}); the fingerprint may learn the format instead of the "
            "generator. Re-save both classes alike with --resave-jpeg 90"
        )
    side_r, side_f = _median_short_side(real), _median_short_side(fake)
    if side_r and side_f and max(side_r, side_f) / min(side_r, side_f) >= SIZE_RATIO:
        out.append(
            f"size bias: the real training images' median short side is {side_r:.0f} px, the generated ones' "
            f"{side_f:.0f} px; resampling traces may separate them. Use real photos of the generated images' size, "
            "or crops that need no resampling"
        )
    return out


def resave_jpeg(images: Sequence[LoadedImage], quality: int) -> list[LoadedImage]:
    """Both classes re-saved as JPEG at one quality, so that compression is no longer a difference."""
    out = []
    for im in images:
        pixels = jpeg(im.pixels, quality)
        out.append(
            derived(
                im,
                pixels,
                f"|resaved-jpeg{quality}".encode(),
                f"re-saved as JPEG quality {quality}",
                format="JPEG",
                jpeg_quality=float(quality),
                jpeg_grid=(0, 0),  # re-saved from these pixels: the blocks start at their corner
            )
        )
    return out
