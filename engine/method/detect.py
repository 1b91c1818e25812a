"""Detection: is an image "from this generator"? Two rules, recorded in each fingerprint's card.

- ``closer-mean`` (the paper): generated when rho is closer to mu_fake than to mu_real.
- ``real-fpr``: generated when rho is past a cut set on real photos at a target false-positive
  rate (in the direction of mu_fake). Images of the generator made elsewhere correlate less than the
  training set's own images do, so the midpoint misses them where a cut at the edge of the real
  population does not (docs/RESULTS.md).

The signed score is 0 at the cut, +1 at mu_fake and -1 at mu_real (linear on each side), so positive
means "generated" whatever the sign the fingerprint happened to learn, and ranking by it gives the
ROC AUC.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from engine.method.correlation import rho_matrix
from engine.method.registry import features
from engine.storage.fingerprint import Fingerprint


def signed_score(rho: np.ndarray | float, mu_real: float, mu_fake: float, threshold: float | None = None) -> np.ndarray:
    """0 at the cut (the midpoint without a threshold), +1 at mu_fake, -1 at mu_real."""
    rho = np.asarray(rho, dtype=np.float64)
    if mu_fake == mu_real:
        return np.zeros_like(rho)
    cut = (mu_real + mu_fake) / 2.0 if threshold is None else float(threshold)
    toward_fake, toward_real = mu_fake - cut, cut - mu_real
    if toward_fake == 0 or toward_real == 0 or (toward_fake > 0) != (toward_real > 0):
        # a cut at or beyond one of the means: one scale on both sides keeps the score monotone
        scale = (mu_fake - mu_real) / 2.0
        return (rho - cut) / scale
    return np.where((rho - cut) * np.sign(toward_fake) >= 0, (rho - cut) / toward_fake, (rho - cut) / toward_real)


def decide(rho: np.ndarray | float, mu_real: float, mu_fake: float, threshold: float | None = None) -> np.ndarray:
    """Closer-mean rule (|rho - mu_fake| < |rho - mu_real|), or past ``threshold`` toward mu_fake."""
    rho = np.asarray(rho, dtype=np.float64)
    if threshold is None:
        return np.abs(rho - mu_fake) < np.abs(rho - mu_real)
    return (rho - threshold) * np.sign(mu_fake - mu_real) > 0


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
    cut = fp.threshold
    return signed_score(rho, fp.mu_real, fp.mu_fake, cut), decide(rho, fp.mu_real, fp.mu_fake, cut)
