"""Test-time perturbations for robustness benchmarks (the paper's Sec. 4.5 and user reports).

Each perturbation maps an H x W x 3 uint8 image to another of the same size. The 1-pixel shift and
the crop offset move the image content against the 8-pixel grid of up-sampling generators, which is
what breaks a phase-locked fingerprint.
"""
from __future__ import annotations

import io
from dataclasses import replace
from typing import Callable

import numpy as np
from PIL import Image, ImageFilter

from engine.images import LoadedImage, content_hash


def _jpeg(quality: int) -> Callable[[np.ndarray], np.ndarray]:
    def apply(pixels: np.ndarray) -> np.ndarray:
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, "JPEG", quality=quality)
        return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))

    return apply


def _resize_half_nearest(pixels: np.ndarray) -> np.ndarray:
    h, w = pixels.shape[:2]
    small = Image.fromarray(pixels).resize((w // 2, h // 2), Image.Resampling.BILINEAR)
    return np.asarray(small.resize((w, h), Image.Resampling.NEAREST))


def _blur(sigma: float) -> Callable[[np.ndarray], np.ndarray]:
    def apply(pixels: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(sigma)))

    return apply


def _shift(dy: int, dx: int) -> Callable[[np.ndarray], np.ndarray]:
    """Move content by (dy, dx), filling the uncovered edge by reflection (it falls in the trimmed border)."""

    def apply(pixels: np.ndarray) -> np.ndarray:
        h, w = pixels.shape[:2]
        padded = np.pad(pixels, ((abs(dy), abs(dy)), (abs(dx), abs(dx)), (0, 0)), mode="reflect")
        top, left = abs(dy) - dy, abs(dx) - dx
        return np.ascontiguousarray(padded[top : top + h, left : left + w])

    return apply


PERTURBATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": lambda p: p,
    "jpeg75": _jpeg(75),
    "jpeg50": _jpeg(50),
    "resize": _resize_half_nearest,
    "blur3": _blur(3.0),
    "shift1": _shift(1, 1),
    "crop-offset": _shift(3, 5),
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
        out.append(replace(im, pixels=pixels, sha256=content_hash(pixels.tobytes() + name.encode()), notes=im.notes + (f"perturbed: {name}",)))
    return out
