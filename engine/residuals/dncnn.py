"""DnCNN (Zhang et al. 2017): a residual-learning denoiser whose output *is* the noise estimate.

17 convolution layers, 64 channels, batch norm in the 15 middle layers, colour in and out. The
paper's residual R = x - denoise(x) equals the network's output, so no subtraction is needed.
"""

from __future__ import annotations

import torch
from torch import nn


class DnCNN(nn.Module):
    """conv+ReLU, (depth-2) x (conv+BN+ReLU), conv; predicts the additive noise of its input."""

    def __init__(self, channels: int = 3, features: int = 64, depth: int = 17):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 3, padding=1, bias=True), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [
                nn.Conv2d(features, features, 3, padding=1, bias=False),
                nn.BatchNorm2d(features),
                nn.ReLU(inplace=True),
            ]
        layers.append(nn.Conv2d(features, channels, 3, padding=1, bias=False))
        self.body = nn.Sequential(*layers)
        self.depth = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
