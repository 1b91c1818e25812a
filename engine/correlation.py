"""Correlation between residuals and fingerprints.

rho(R, F) = mean((R - mean R)/std R * (F - mean F)/std F), the Pearson correlation over all of
C x H x W. Batched as one matrix product so that N images x M fingerprints cost one pass.

``shift-max`` (alignment-robust): the fingerprints of up-sampling generators are near-periodic with
period 8, so a 1-pixel shift or another crop offset of the test image decorrelates it completely.
Taking the maximum circular cross-correlation over the 64 shifts of one 8x8 period (via FFT) makes
the statistic invariant to such offsets; mu_r and mu_g are calibrated with the same statistic.
"""
from __future__ import annotations

import torch

EPS = 1e-8


def standardize(x: torch.Tensor) -> torch.Tensor:
    """Zero-mean, unit-std over all but the first dimension."""
    flat = x.reshape(x.shape[0], -1)
    flat = flat - flat.mean(dim=1, keepdim=True)
    return (flat / (flat.std(dim=1, unbiased=False, keepdim=True) + EPS)).reshape(x.shape)


def rho(residuals: torch.Tensor, fingerprint: torch.Tensor) -> torch.Tensor:
    """Correlation of each of N residuals (N x C x H x W) with one fingerprint (C x H x W) -> N."""
    return rho_matrix(residuals, fingerprint.unsqueeze(0))[:, 0]


def rho_matrix(residuals: torch.Tensor, fingerprints: torch.Tensor, mode: str = "plain", period: int = 8) -> torch.Tensor:
    """N x M correlations of N residuals with M fingerprints (all the same shape)."""
    if residuals.shape[1:] != fingerprints.shape[1:]:
        raise ValueError(f"residual shape {tuple(residuals.shape[1:])} != fingerprint shape {tuple(fingerprints.shape[1:])}")
    r = standardize(residuals.float())
    f = standardize(fingerprints.float().to(r.device))
    if mode == "plain":
        return r.reshape(r.shape[0], -1) @ f.reshape(f.shape[0], -1).T / r[0].numel()
    if mode == "shift-max":
        return shift_max_matrix(r, f, period)
    raise ValueError(f"unknown correlation mode {mode!r}")


def shift_max_matrix(r: torch.Tensor, f: torch.Tensor, period: int = 8) -> torch.Tensor:
    """Max |correlation| over circular shifts (dy, dx) in [-p/2, p/2); absolute because the sign of a
    fingerprint is arbitrary and a half-period shift of a checkerboard flips it."""
    n, c, h, w = r.shape
    fr = torch.fft.rfft2(r)  # N x C x H x W/2+1
    ff = torch.fft.rfft2(f)  # M x C x H x W/2+1
    out = torch.empty(n, f.shape[0], device=r.device)
    for j in range(f.shape[0]):
        cross = torch.fft.irfft2((fr * ff[j].conj().unsqueeze(0)).sum(dim=1), s=(h, w)) / (c * h * w)  # N x H x W
        ys = torch.arange(-(period // 2), period - period // 2, device=r.device) % h
        xs = torch.arange(-(period // 2), period - period // 2, device=r.device) % w
        window = cross[:, ys][:, :, xs]
        out[:, j] = window.reshape(n, -1).abs().max(dim=1).values
    return out
