"""Correlation between residuals and fingerprints: the detection statistics.

``plain``: rho(R, F) = mean((R - mean R)/std R * (F - mean F)/std F), the Pearson correlation over
all of C x H x W. Batched as one matrix product so that N images x M fingerprints cost one pass.

The fingerprints of up-sampling generators are near-periodic with period 8 (the decoder's
up-sampling grid). Two statistics use only that periodic part, the 3 x 8 x 8 mean of the
residual over its 8 x 8 blocks (``periodic_part``):

``periodic`` (luma, aligned): the correlation of the residual's and the fingerprint's periodic parts
on luma. Averaging 900 blocks of a 240-pixel residual cuts the scene's noise by 30x, and JPEG keeps
luma at full resolution while it rebuilds chroma by up-sampling (which leaves 2-periodic patterns
of its own): on JPEG-75 copies of the transfer pairs this kept AUC 0.853 and 0.773 where ``plain`` fell to
0.765 and 0.659 (``sd1/`` -> ``sd1-b/``, ``ldm/`` -> ``ldm-b/``; docs/results/robustness).

``periodic-rgb`` (aligned): the same on all three channels. It is how a JPEG suspect is read, with
a fingerprint that repeats the JPEG reader's template (``engine/method/jpeg_reader.py``): there the
chroma's up-sampling pattern, common to every JPEG, is whitened away instead of left out.

``phase`` (alignment-free): the largest correlation of the periodic parts over the 64 cyclic shifts
of one period. A crop that starts k pixels off the generator's grid rolls the periodic part by k,
so the maximum does not depend on where the crop starts. The maximum of 64 noisy values has a
higher floor than one value, which is why the earlier full-image ``shift-max`` lost on aligned
images: here the 64 values are each averaged over 900 blocks, so the floor stays low. It needs the
fingerprint's sign fixed (generated side positive), which training does (``api.train_fingerprint``).

``phase-grid`` (internal): ``phase``'s correlation at no roll (the number ``periodic-rgb`` gives).
Where ``phase`` exceeds it, the image's periodic pattern is off the crop's 8-pixel grid (a shifted or
offset crop), which is when detection also reads it with ``phase`` (``api.with_readings``).

``shift-max``: the earlier alignment statistic, max |circular cross-correlation| over 64 shifts of the
full residual (kept for comparison). mu_real, mu_fake and the cut are always calibrated with the
fingerprint's own statistic.
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


def rho_matrix(
    residuals: torch.Tensor, fingerprints: torch.Tensor, mode: str = "plain", period: int = 8
) -> torch.Tensor:
    """N x M correlations of N residuals with M fingerprints (all the same shape)."""
    if residuals.shape[1:] != fingerprints.shape[1:]:
        raise ValueError(
            f"residual shape {tuple(residuals.shape[1:])} != fingerprint shape {tuple(fingerprints.shape[1:])}"
        )
    r = standardize(residuals.float())
    f = standardize(fingerprints.float().to(r.device))
    if mode == "plain":
        return r.reshape(r.shape[0], -1) @ f.reshape(f.shape[0], -1).T / r[0].numel()
    if mode == "shift-max":
        return shift_max_matrix(r, f, period)
    if mode == "periodic":
        a, b = periodic_part(luma(r), period), periodic_part(luma(f), period)
        return a.reshape(a.shape[0], -1) @ b.reshape(b.shape[0], -1).T / a[0].numel()
    if mode == "phase":
        return phase_max_matrix(periodic_part(r, period), periodic_part(f, period))
    if mode in ("periodic-rgb", "phase-grid"):  # phase-grid: phase at no roll, which phase exceeds off the grid
        a, b = periodic_part(r, period), periodic_part(f, period)
        return a.reshape(a.shape[0], -1) @ b.reshape(b.shape[0], -1).T / a[0].numel()
    raise ValueError(f"unknown correlation mode {mode!r}")


LUMA = (0.299, 0.587, 0.114)


def luma(x: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W -> N x 1 x H x W (Rec. 601 weights, the Y that JPEG keeps at full resolution)."""
    weights = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


def periodic_part(x: torch.Tensor, period: int = 8) -> torch.Tensor:
    """N x C x H x W -> standardised N x C x p x p mean over the p x p blocks (H, W cropped to multiples of p)."""
    n, c, h, w = x.shape
    h, w = h - h % period, w - w % period
    blocks = x[..., :h, :w].reshape(n, c, h // period, period, w // period, period).mean(dim=(2, 4))
    return standardize(blocks)


def phase_max_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """N x M: max over the p*p cyclic rolls of b of the correlation of periodic parts a (N x C x p x p) and b."""
    return phase_roll_matrix(a, b).max(dim=2).values


def phase_roll_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """N x M x p*p: the correlation of periodic parts a (N x C x p x p) with each of b's cyclic rolls by
    (dy, dx), at index dy * p + dx; ``phase`` is its maximum."""
    p = a.shape[-1]
    rolled = torch.stack(
        [torch.roll(b, (dy, dx), dims=(2, 3)) for dy in range(p) for dx in range(p)], dim=1
    )  # M x p*p x C x p x p
    corr = a.reshape(a.shape[0], -1) @ rolled.reshape(-1, a[0].numel()).T / a[0].numel()  # N x (M * p*p)
    return corr.reshape(a.shape[0], b.shape[0], p * p)


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
