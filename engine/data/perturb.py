"""Degradations an image meets on its way to an analyst: re-saving, rescaling, blurring, cropping.

Plain functions map an H x W x 3 uint8 image to another of the same size. They serve two users:
the named test-time perturbations of ``dif bench`` (``PERTURBATIONS``) and the random degradations
drawn while fitting (``engine/data/augment.py``). The 1-pixel shift and the crop offsets move the image
content against the 8-pixel grid of up-sampling generators, which is what breaks a phase-locked
fingerprint.
"""

from __future__ import annotations

import io
from typing import Callable

import numpy as np
from PIL import Image, ImageFilter

from engine.data.images import LoadedImage, content_hash, derived


def jpeg(pixels: np.ndarray, quality: int) -> np.ndarray:
    """Re-save as baseline JPEG at ``quality`` (Pillow, 4:2:0 chroma as most sharing sites do)."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=int(quality))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def rescale(pixels: np.ndarray, factor: float) -> np.ndarray:
    """Resample by ``factor`` and back to the original size, so that the crop still fits.

    Shrinking loses the generator's finest traces (what a half-size copy keeps); enlarging
    interpolates them, and the centre of the enlarged copy is what a later crop sees.
    """
    h, w = pixels.shape[:2]
    nh, nw = max(8, round(h * factor)), max(8, round(w * factor))
    scaled = Image.fromarray(pixels).resize((nw, nh), Image.Resampling.BICUBIC)
    if factor >= 1:
        top, left = (nh - h) // 2, (nw - w) // 2
        return np.ascontiguousarray(np.asarray(scaled)[top : top + h, left : left + w])
    return np.asarray(scaled.resize((w, h), Image.Resampling.BICUBIC))


def half_then_nearest(pixels: np.ndarray) -> np.ndarray:
    """Bilinear half-size copy enlarged back by pixel repetition (the earlier benchmarks' ``resize``)."""
    h, w = pixels.shape[:2]
    small = Image.fromarray(pixels).resize((w // 2, h // 2), Image.Resampling.BILINEAR)
    return np.asarray(small.resize((w, h), Image.Resampling.NEAREST))


def blur(pixels: np.ndarray, sigma: float) -> np.ndarray:
    return np.asarray(Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(sigma)))


def shift(pixels: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Move content by (dy, dx), filling the uncovered edge by reflection (it falls in the trimmed border)."""
    h, w = pixels.shape[:2]
    padded = np.pad(pixels, ((abs(dy), abs(dy)), (abs(dx), abs(dx)), (0, 0)), mode="reflect")
    top, left = abs(dy) - dy, abs(dx) - dx
    return np.ascontiguousarray(padded[top : top + h, left : left + w])


def add_noise(pixels: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of ``sigma`` grey levels, rounded back to 8 bits (sensor-like re-capture noise)."""
    noisy = pixels.astype(np.float32) + rng.normal(0.0, sigma, pixels.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def random_offset_of(pixels: np.ndarray) -> tuple[int, int]:
    """The (dy, dx) crop offset ``crop-random`` gives these pixels: 1-7 pixels per axis, either way, seeded by
    the content so every run draws the same one (and a study can know where the copy's grid went)."""
    rng = np.random.default_rng(int(content_hash(pixels.tobytes())[:12], 16))
    dy, dx = (int(v) * int(s) for v, s in zip(rng.integers(1, 8, 2), rng.choice([-1, 1], 2)))
    return dy, dx


def _random_offset(pixels: np.ndarray) -> np.ndarray:
    """``crop-random``: the copy shifted by ``random_offset_of``."""
    return shift(pixels, *random_offset_of(pixels))


# a re-saved copy knows its quality, as a JPEG file does
JPEG_RESAVES = {"jpeg95": 95, "jpeg90": 90, "jpeg75": 75, "jpeg50": 50}

PERTURBATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": lambda p: p,
    "jpeg95": lambda p: jpeg(p, 95),
    "jpeg90": lambda p: jpeg(p, 90),
    "jpeg75": lambda p: jpeg(p, 75),
    "jpeg50": lambda p: jpeg(p, 50),
    "resize": half_then_nearest,
    "scale0.5": lambda p: rescale(p, 0.5),
    "scale1.5": lambda p: rescale(p, 1.5),
    "blur3": lambda p: blur(p, 3.0),
    "blur1": lambda p: blur(p, 1.0),
    "shift1": lambda p: shift(p, 1, 1),
    "crop-offset": lambda p: shift(p, 3, 5),
    "crop-random": _random_offset,
}


def perturb(images: list[LoadedImage], name: str) -> list[LoadedImage]:
    """Apply a named perturbation; the content hash changes so cached residuals stay correct."""
    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r} (choose from {', '.join(PERTURBATIONS)})")
    if name == "none":
        return list(images)
    fn = PERTURBATIONS[name]
    out = []
    for im in images:
        pixels = fn(im.pixels)
        changes = {"jpeg_quality": float(JPEG_RESAVES[name]), "jpeg_grid": (0, 0)} if name in JPEG_RESAVES else {}
        out.append(derived(im, pixels, name.encode(), f"perturbed: {name}", **changes))
    return out
