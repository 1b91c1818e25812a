"""Conditions under which a suspect image's reading is unreliable, judged from the image alone.

A fingerprint is known to weaken on an image smaller than the crop (padded), on an upscaled image
(its spectrum falls off a cliff, its pixels come in repeated pairs, or it has no detail left at all) and
under heavy JPEG compression
(quality estimated from the file's quantisation tables; docs/RESULTS.md, "Robustness": on JPEG-75
copies of the transfer pairs the plain reading kept 0.53-0.60 balanced accuracy, the card's JPEG reading
0.77-0.80 at 2-4% of real JPEGs flagged).
`dif detect` and attribution both attach these warnings to their rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.data.images import LoadedImage, content_hash
from engine.data.jpeg import jpeg_quality

JPEG_QUALITY_WARN = 90  # below this estimated quality the fingerprint is known to weaken
# log10 power-density ratios (resampling_evidence), measured on 7 scikit-image photos: natives, JPEG q90 and
# Gaussian-blurred (sigma 0.6, smooth like a native SD crop) against bicubic 2x, 4x and 256 -> 3000 px JPEGs
UPSCALE_CLIFF_WARN = -2.25  # natives -0.73..-1.81, blurred down to -2.16; 2x bicubic -2.33..-2.59, 4x -2.1..-3.2
ENLARGED_DETAIL_WARN = -2.6  # natives -1.31..-2.36, blurred down to -2.50; 256 -> 3000 px JPEG -2.70..-4.82
# ...and above 0.1 cycles/px only a flat noise floor (cliff -0.64..-0.93); a flat native region
# (astronaut's dark corner: detail -3.0) keeps a falling spectrum (cliff -1.47)
ENLARGED_FLOOR_CLIFF = -1.0
UPSCALE_MIN_SIDE = 128  # smaller images give too noisy a spectrum to judge
# share of row and of column pairs that are identical at the best phase, for a 2x pixel-repetition enlargement:
# every such copy of the shared sets 1.00, every native 0.00 (median; flat regions reach 0.41 at either phase)
REPEATED_PAIRS_WARN = 0.9


def _band(spec: np.ndarray, r: np.ndarray, lo: float, hi: float) -> float:
    """Mean power in the square annulus lo < max(|fy|, |fx|) < hi (cycles/pixel)."""
    sel = (r > lo) & (r < hi)
    return float(spec[sel].mean()) if sel.any() else 0.0


def resampling_evidence(pixels: np.ndarray) -> tuple[float, float]:
    """(cliff, detail): log10 power-density ratios of the gray, Hann-windowed spectrum.

    cliff = above 0.3 cycles/px over 0.1-0.2: an image interpolated up 2x or more has nothing of
    its own above the source's Nyquist, so the spectrum falls off a cliff there. detail = 0.1-0.2
    over 0.01-0.04: an image enlarged many times (256 -> 3000 px) has no detail left even in the
    middle band, while its top band holds only JPEG and rounding noise (which fools ``cliff``).
    """
    h, w = pixels.shape[:2]
    side = 1024  # a centre window bounds the FFT's cost on large photos
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    gray = pixels[top : top + side, left : left + side].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    gray -= gray.mean()
    h, w = gray.shape
    spec = np.abs(np.fft.fft2(gray * np.outer(np.hanning(h), np.hanning(w)))) ** 2
    r = np.maximum(np.abs(np.fft.fftfreq(h))[:, None], np.abs(np.fft.fftfreq(w))[None, :])
    tiny = 1e-30
    high, mid, low = _band(spec, r, 0.3, 0.51), _band(spec, r, 0.1, 0.2), _band(spec, r, 0.01, 0.04)
    return float(np.log10((high + tiny) / (mid + tiny))), float(np.log10((mid + tiny) / (low + tiny)))


def looks_upscaled(pixels: np.ndarray) -> bool:
    """Whether an image looks enlarged about 2x or more (``upscale_kind``): such an image is also read
    with a model's upscaled reading, where it has one."""
    return upscale_kind(pixels) is not None


def upscale_kind(pixels: np.ndarray) -> str | None:
    """``"repeated"`` when the image's rows and columns come in identical pairs (a pixel-repetition
    enlargement), ``"interpolated"`` when its spectrum falls off a cliff above the source's Nyquist,
    else None. On half-size copies enlarged back (bicubic) the cliff held for 87-99% of each shared
    generated set and 61% of the real tiles (flat ones keep only rounding noise above 0.3 cycles/pixel,
    so no cliff), and for 0-7.6% of the uncompressed images themselves; the repetition, for every copy
    enlarged that way and none of the images themselves (docs/RESULTS.md, "Robustness")."""
    h, w = pixels.shape[:2]
    if min(h, w) < UPSCALE_MIN_SIDE:
        return None
    if repeated_pairs(pixels) >= REPEATED_PAIRS_WARN:
        return "repeated"
    return "interpolated" if resampling_evidence(pixels)[0] < UPSCALE_CLIFF_WARN else None


def repeated_pairs(pixels: np.ndarray) -> float:
    """The smaller, of rows and of columns, of the share of neighbouring pairs that are identical at the
    better of the two phases, when the other phase pairs off at most half as often (a flat image repeats
    at both). A 2x nearest-neighbour enlargement gives 1.0; a photo or a generated image about 0."""
    shares = []
    for lines in (pixels, pixels.swapaxes(0, 1)):
        by_phase = []
        for phase in (0, 1):
            pairs = (len(lines) - phase) // 2
            first, second = lines[phase : phase + 2 * pairs : 2], lines[phase + 1 : phase + 2 * pairs : 2]
            by_phase.append(float(np.mean(np.all(first == second, axis=tuple(range(1, lines.ndim))))) if pairs else 0.0)
        best, other = max(by_phase), min(by_phase)
        shares.append(best if other <= best / 2 else 0.0)
    return min(shares)


def source_bytes(image: LoadedImage) -> bytes | None:
    """The file's bytes when ``image.source`` is a readable path with the same content."""
    try:
        path = Path(image.source)
        if path.is_file() and path.stat().st_size < 200 * 1024 * 1024:
            data = path.read_bytes()
            if content_hash(data) == image.sha256:
                return data
    except (OSError, ValueError):
        return None
    return None


def image_warnings(image: LoadedImage, crop: int, data: bytes | None = None) -> list[str]:
    """Conditions under which attribution of ``image`` is unreliable."""
    out = []
    h, w = image.pixels.shape[:2]
    if h < crop or w < crop:
        out.append(f"image is {w}x{h}, smaller than the {crop}x{crop} crop: padded, the fingerprint may not match")
    if min(h, w) >= UPSCALE_MIN_SIDE:
        cliff, detail = resampling_evidence(image.pixels)
        if cliff < UPSCALE_CLIFF_WARN:
            out.append(
                f"looks upscaled (spectrum falls off above 0.3 cycles/pixel: {cliff:.3f} < {UPSCALE_CLIFF_WARN}): "
                "resampling weakens the fingerprint"
            )
        elif repeated_pairs(image.pixels) >= REPEATED_PAIRS_WARN:
            out.append("looks enlarged by pixel repetition (rows and columns come in identical pairs): resampling "
                       "weakens the fingerprint")  # fmt: skip
        elif detail < ENLARGED_DETAIL_WARN and cliff > ENLARGED_FLOOR_CLIFF:
            out.append(
                f"looks upscaled from a much smaller image (no detail above 0.1 cycles/pixel: {detail:.3f} < "
                f"{ENLARGED_DETAIL_WARN}): resampling erases the fingerprint"
            )
    if image.format == "JPEG":
        quality = image.jpeg_quality
        if quality is None:
            data = data if data is not None else source_bytes(image)
            quality = jpeg_quality(data) if data is not None else None
        if quality is None:
            out.append("JPEG file: compression weakens the fingerprint (quality unknown)")
        elif quality < JPEG_QUALITY_WARN:
            out.append(
                f"heavy JPEG compression (estimated quality {quality:.0f} < {JPEG_QUALITY_WARN}): read with the "
                "model's JPEG reading; at quality 75 that kept 0.77-0.80 balanced accuracy (0.96-0.97 uncompressed) "
                "and flagged 2-4% of real JPEGs"
            )
    return out
