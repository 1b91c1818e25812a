"""The DIF training loss: contrastive on correlation distance.

For a pair (i, j) with correlations rho_i, rho_j to the current fingerprint, D = |rho_i - rho_j|.
Same-class pairs are pulled together (D^2), different-class pairs pushed to at least the margin
(max(0, m - D)^2); the sum is divided by m so the loss scale does not depend on m. Symmetric in the
sign of the fingerprint: generated images may end up with positive or negative mean correlation.
"""
from __future__ import annotations

import torch


def contrastive_correlation_loss(rho_a: torch.Tensor, rho_b: torch.Tensor, same: torch.Tensor, margin: float = 0.01) -> torch.Tensor:
    """Mean over pairs; ``same`` is 1.0 where a and b come from the same class, else 0.0."""
    distance = (rho_a - rho_b).abs()
    pull = same * distance.pow(2)
    push = (1.0 - same) * torch.clamp(margin - distance, min=0.0).pow(2)
    return (pull + push).mean() / margin
