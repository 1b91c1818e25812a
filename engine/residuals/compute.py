"""Noise residuals, computed once per (image content, extractor, crop) and cached on disk.

The denoiser's zero padding makes residuals about 10x stronger on the outermost pixels, a border
term that would dominate any correlation; ``border`` pixels are trimmed from every side. Trimming a
multiple of 8 keeps the residual on the 8-pixel grid of up-sampling generators.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from engine.data.images import LoadedImage, to_tensor_batch
from engine.residuals.registry import Extractor

Progress = Callable[[int, int], None]


def residual_key(extractor: Extractor, image: LoadedImage, border: int) -> str:
    padded = any(n.startswith("padded") for n in image.notes)
    crop = image.pixels.shape[0]
    return f"res|{extractor.cache_id}|c{crop}|b{border}|p{int(padded)}|{image.sha256}"


def trim(residual: torch.Tensor, border: int) -> torch.Tensor:
    return (
        residual[..., border : residual.shape[-2] - border, border : residual.shape[-1] - border]
        if border
        else residual
    )


def compute_residuals(
    images: Sequence[LoadedImage],
    extractor: Extractor,
    border: int = 8,
    cache=None,
    progress: Progress | None = None,
    batch_size: int = 8,
) -> torch.Tensor:
    """N x 3 x (crop-2b) x (crop-2b) float32 residuals; cached ones are read, the rest computed."""
    if not images:
        raise ValueError("no images")
    crop = images[0].pixels.shape[0]
    side = crop - 2 * border
    out = torch.empty(len(images), 3, side, side)
    todo: list[int] = []
    for i, img in enumerate(images):
        if img.pixels.shape[:2] != (crop, crop):
            raise ValueError(f"{img.source}: crop {img.pixels.shape[:2]} differs from the batch's {crop}")
        raw = cache.get(residual_key(extractor, img, border)) if cache is not None else None
        if isinstance(raw, bytes) and len(raw) == 3 * side * side * 2:
            out[i] = torch.from_numpy(np.frombuffer(raw, dtype=np.float16).reshape(3, side, side).astype(np.float32))
        else:
            todo.append(i)
    done = len(images) - len(todo)
    if progress:
        progress(done, len(images))
    for start in range(0, len(todo), batch_size):
        idx = todo[start : start + batch_size]
        res = trim(extractor(to_tensor_batch([images[i] for i in idx]), batch_size=batch_size), border)
        for j, i in enumerate(idx):
            # float16 keeps ~3 significant digits: residuals are ~1e-2, correlations change < 1e-4.
            half = res[j].to(torch.float16)
            out[i] = half.float()
            if cache is not None:
                cache.set(residual_key(extractor, images[i], border), half.numpy().tobytes())
        done += len(idx)
        if progress:
            progress(done, len(images))
    return out
