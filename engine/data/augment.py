"""Degraded copies of the training images, so that a fingerprint survives the way images are shared.

A fingerprint fitted on pristine PNGs learns traces that a JPEG re-save or a rescale wipes out, and
nothing tells it which traces survive. Fitting on degraded copies of *both* classes, drawn the way
the world degrades images, keeps the traces that survive; degrading both classes alike keeps format
from becoming the tell (a fingerprint of "JPEG vs PNG" would flag every real JPEG).

Copies are drawn once per fit (a fixed number per image, seeded by the image content and the fit's
seed), not per step: every copy's residual is then computed once and cached under a content hash
that includes the degradation, and a rerun is a cache hit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from engine.data.images import LoadedImage, derived
from engine.data.perturb import add_noise, blur, jpeg, rescale, shift
from engine.errors import ConfigError


@dataclass(frozen=True)
class Degradation:
    """One drawn degradation; applied in the order the world applies them: geometry, blur, noise, JPEG last."""

    scale: float | None = None
    offset: tuple[int, int] = (0, 0)
    blur: float | None = None
    noise: float | None = None
    jpeg: int | None = None

    def tag(self) -> str:
        parts = []
        if self.scale is not None:
            parts.append(f"scale{self.scale:.3f}")
        if self.offset != (0, 0):
            parts.append(f"offset{self.offset[0]},{self.offset[1]}")
        if self.blur is not None:
            parts.append(f"blur{self.blur:.2f}")
        if self.noise is not None:
            parts.append(f"noise{self.noise:.2f}")
        if self.jpeg is not None:
            parts.append(f"jpeg{self.jpeg}")
        return "+".join(parts) or "clean"

    def apply(self, pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = pixels
        if self.scale is not None:
            out = rescale(out, self.scale)
        if self.offset != (0, 0):
            out = shift(out, *self.offset)
        if self.blur is not None:
            out = blur(out, self.blur)
        if self.noise is not None:
            out = add_noise(out, self.noise, rng)
        if self.jpeg is not None:
            out = jpeg(out, self.jpeg)
        return out


@dataclass(frozen=True)
class Policy:
    """Probabilities and ranges of each degradation in one drawn copy."""

    p_jpeg: float = 0.0
    jpeg_range: tuple[int, int] = (60, 95)
    p_scale: float = 0.0
    scale_range: tuple[float, float] = (0.5, 1.5)
    p_blur: float = 0.0
    blur_range: tuple[float, float] = (0.3, 1.5)
    p_offset: float = 0.0
    max_offset: int = 7
    p_noise: float = 0.0
    noise_range: tuple[float, float] = (1.0, 4.0)

    def draw(self, rng: np.random.Generator) -> Degradation:
        def maybe(p: float) -> bool:
            return bool(rng.random() < p)

        scale = float(np.exp(rng.uniform(*np.log(self.scale_range)))) if maybe(self.p_scale) else None
        offset = (
            tuple(int(v) for v in rng.integers(-self.max_offset, self.max_offset + 1, 2))
            if maybe(self.p_offset)
            else (0, 0)
        )
        blur_sigma = float(rng.uniform(*self.blur_range)) if maybe(self.p_blur) else None
        noise = float(rng.uniform(*self.noise_range)) if maybe(self.p_noise) else None
        quality = int(rng.integers(self.jpeg_range[0], self.jpeg_range[1] + 1)) if maybe(self.p_jpeg) else None
        return Degradation(scale, offset, blur_sigma, noise, quality)  # type: ignore[arg-type]


# name -> policy. "world" mixes them as shared images meet them: most are re-saved as JPEG, some rescaled.
POLICIES: dict[str, Policy] = {
    "none": Policy(),
    "jpeg": Policy(p_jpeg=1.0),
    "scale": Policy(p_scale=1.0),
    "blur": Policy(p_blur=1.0),
    "offset": Policy(p_offset=1.0),
    "noise": Policy(p_noise=1.0),
    "world": Policy(p_jpeg=0.8, p_scale=0.3, p_blur=0.15, p_offset=0.3, p_noise=0.15),
}


def policy(name: str) -> Policy:
    if name not in POLICIES:
        raise ConfigError(f"unknown augmentation {name!r} (choose from {', '.join(POLICIES)})")
    return POLICIES[name]


def degraded_copies(images: Sequence[LoadedImage], name: str, copies: int, seed: int) -> list[LoadedImage]:
    """``copies`` degraded versions of each image under policy ``name`` (none for "none").

    Each copy's draw is seeded by (image content, seed, copy index), so the same image gets the same
    copies in any batch or order, and its hash names the degradation so the residual cache stays right.
    """
    pol = policy(name)
    if name == "none" or copies <= 0:
        return []
    out = []
    for im in images:
        for k in range(copies):
            rng = np.random.default_rng([int(im.sha256[:15], 16), seed, k])
            deg = pol.draw(rng)
            pixels = deg.apply(im.pixels, rng)
            tag = deg.tag()
            out.append(derived(im, pixels, f"|augmented|{tag}".encode(), f"augmented: {tag}"))
    return out
