"""Threshold-free detection: an image is "from this generator" when its correlation with the
fingerprint is closer to mu_fake than to mu_real (the training means).

The signed score places rho on the line between the two means: 0 at the midpoint, +1 at mu_fake,
-1 at mu_real, so positive means "generated" whatever the sign the fingerprint happened to learn.
Ranking by this score gives the ROC AUC.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from engine.correlation import rho_matrix
from engine.fingerprint import Fingerprint
from engine.methods import features


def signed_score(rho: np.ndarray | float, mu_real: float, mu_fake: float) -> np.ndarray:
    half_gap = (mu_fake - mu_real) / 2.0
    if half_gap == 0:
        return np.zeros_like(np.asarray(rho, dtype=np.float64))
    return (np.asarray(rho, dtype=np.float64) - (mu_real + mu_fake) / 2.0) / half_gap


def decide(rho: np.ndarray | float, mu_real: float, mu_fake: float) -> np.ndarray:
    """True where |rho - mu_fake| < |rho - mu_real|."""
    rho = np.asarray(rho, dtype=np.float64)
    return np.abs(rho - mu_fake) < np.abs(rho - mu_real)


def correlate(fingerprints: Sequence[Fingerprint], residuals: torch.Tensor) -> np.ndarray:
    """N x M correlations of N residuals with M fingerprints, batched per (method, correlation).

    All fingerprints must share the residual geometry (crop and border) of ``residuals``.
    """
    n, m = residuals.shape[0], len(fingerprints)
    out = np.zeros((n, m), dtype=np.float64)
    groups: dict[tuple[str, str], list[int]] = {}
    for j, fp in enumerate(fingerprints):
        if fp.size != residuals.shape[-1]:
            raise ValueError(f"model {fp.name!r}: fingerprint side {fp.size} != residual side {residuals.shape[-1]}")
        groups.setdefault((fp.method, fp.correlation), []).append(j)
    for (method, mode), idx in groups.items():
        feats = features(method, residuals)
        stack = torch.stack([fingerprints[j].tensor for j in idx])
        out[:, idx] = rho_matrix(feats, stack, mode=mode).double().cpu().numpy()
    return out


def scores_and_decisions(fp: Fingerprint, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return signed_score(rho, fp.mu_real, fp.mu_fake), decide(rho, fp.mu_real, fp.mu_fake)
