"""A weight-free residual extractor: wavelet-domain Wiener denoising as used for camera PRNU.

Mihcak et al. (1999), the denoiser of Lukas/Fridrich PRNU work, on an orthonormal Haar transform
written in torch so it batches and runs on the GPU: 4 levels; each detail coefficient is shrunk by
var / (var + sigma0^2), var being the smallest local variance estimate over 3/5/7/9 windows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def haar_analysis(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One orthonormal Haar level: returns (approximation, details stacked N x 3C x H/2 x W/2)."""
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    low = (a + b + c + d) / 2
    details = torch.cat([(a - b + c - d) / 2, (a + b - c - d) / 2, (a - b - c + d) / 2], dim=1)
    return low, details


def haar_synthesis(low: torch.Tensor, details: torch.Tensor) -> torch.Tensor:
    """Exact inverse of :func:`haar_analysis`."""
    h, v, dd = details.chunk(3, dim=1)
    a = (low + h + v + dd) / 2
    b = (low - h + v - dd) / 2
    c = (low + h - v - dd) / 2
    d = (low - h - v + dd) / 2
    n, ch, hh, ww = low.shape
    out = low.new_empty(n, ch, hh * 2, ww * 2)
    out[..., 0::2, 0::2], out[..., 0::2, 1::2] = a, b
    out[..., 1::2, 0::2], out[..., 1::2, 1::2] = c, d
    return out


def wiener_shrink(coeffs: torch.Tensor, sigma0: float, windows: tuple[int, ...] = (3, 5, 7, 9)) -> torch.Tensor:
    """Mihcak's locally adaptive Wiener shrinkage of detail coefficients."""
    energy = coeffs * coeffs
    noise_var = sigma0 * sigma0
    best = None
    for w in windows:
        local = F.avg_pool2d(energy, w, stride=1, padding=w // 2, count_include_pad=False)
        est = torch.clamp(local - noise_var, min=0.0)
        best = est if best is None else torch.minimum(best, est)
    return coeffs * best / (best + noise_var)


def wavelet_denoise(x: torch.Tensor, sigma0: float = 5.0 / 255.0, levels: int = 4) -> torch.Tensor:
    """Denoise N x C x H x W images in [0, 1]; H and W are reflect-padded to a multiple of 2**levels."""
    mult = 2**levels
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % mult, (-w) % mult
    y = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect") if (pad_h or pad_w) else x
    details = []
    low = y
    for _ in range(levels):
        low, det = haar_analysis(low)
        details.append(wiener_shrink(det, sigma0))
    for det in reversed(details):
        low = haar_synthesis(low, det)
    return low[..., :h, :w]


class WaveletResidual(torch.nn.Module):
    """Residual x - wavelet_denoise(x); no weights."""

    def __init__(self, sigma0: float = 5.0 / 255.0, levels: int = 4):
        super().__init__()
        self.sigma0, self.levels = sigma0, levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - wavelet_denoise(x, self.sigma0, self.levels)
