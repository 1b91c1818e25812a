"""The DIF training loss: contrastive on correlation distance (paper Eq. 6).

For a pair (i, j) with correlations rho_i, rho_j to the current fingerprint, D = |rho_i - rho_j|.
Same-class pairs are pulled together, different-class pairs pushed to at least the margin m; the
sum is divided by m so the loss scale does not depend on m. Symmetric in the sign of the
fingerprint: generated images may end up with positive or negative mean correlation.

- ``hinge`` (the paper and the reference code): D for same-class pairs, max(0, m - D) otherwise.
- ``squared``: D^2 and max(0, m - D)^2, what this project shipped before; kept for comparison.
"""

from __future__ import annotations

import torch

LOSSES = ("hinge", "squared")


def contrastive_correlation_loss(
    rho_a: torch.Tensor, rho_b: torch.Tensor, same: torch.Tensor, margin: float = 0.01, kind: str = "hinge"
) -> torch.Tensor:
    """Mean over pairs; ``same`` is 1.0 where a and b come from the same class, else 0.0."""
    distance = (rho_a - rho_b).abs()
    pull = same * distance
    push = (1.0 - same) * torch.clamp(margin - distance, min=0.0)
    if kind == "squared":
        pull, push = pull.pow(2), push.pow(2)
    elif kind != "hinge":
        raise ValueError(f"unknown loss {kind!r} (choose from {', '.join(LOSSES)})")
    return (pull + push).mean() / margin
