"""The fingerprint generator g: a 4-level U-Net (32-64-128-256) as in the official DIF code.

Blocks are two (conv3x3, BN, LeakyReLU 0.01); down-sampling by max-pool, up-sampling by a k2 s2
transposed convolution followed by concatenation with the skip; a 1x1 convolution to 3 channels
and tanh. About 1.9M parameters at base width 32.
"""
from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.01, inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.01, inplace=True),
    )


class UNet(nn.Module):
    """U-Net with ``levels`` resolutions; input sides must be multiples of 2**(levels-1)."""

    def __init__(self, in_channels: int = 16, out_channels: int = 3, base: int = 32, levels: int = 4):
        super().__init__()
        widths = [base * 2**i for i in range(levels)]
        self.down = nn.ModuleList()
        cin = in_channels
        for w in widths:
            self.down.append(_block(cin, w))
            cin = w
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for w_low, w_high in zip(reversed(widths[1:]), reversed(widths[:-1])):
            self.up.append(nn.ConvTranspose2d(w_low, w_high, kernel_size=2, stride=2))
            self.merge.append(_block(2 * w_high, w_high))
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        skips = []
        x = z
        for i, block in enumerate(self.down):
            x = block(x)
            if i < len(self.down) - 1:
                skips.append(x)
                x = self.pool(x)
        for up, merge in zip(self.up, self.merge):
            x = merge(torch.cat([up(x), skips.pop()], dim=1))
        return torch.tanh(self.head(x))
