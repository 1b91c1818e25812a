"""The fingerprint generator g: the U-Net of the official DIF code, written here from its description.

- Encoder: ``pools`` blocks of widths base, 2*base, ..., each followed by a 2x2 max-pool (4 pools).
- Bottleneck: a block at the widest width, then up-sampling.
- Up-sampling: a k2 s2 transposed convolution followed by BatchNorm (no activation).
- Decoder: concatenate the skip, a block down to the next narrower width, up-sample; the last block
  (at ``base``) does not up-sample.
- Head: a 1x1 convolution to 3 channels and tanh.
A block is two (conv3x3, BatchNorm, LeakyReLU 0.01). About 3.7M parameters at base 32 and 4 pools;
input sides must be multiples of 2**pools.
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


def _up(width: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(width, width, kernel_size=2, stride=2), nn.BatchNorm2d(width))


class UNet(nn.Module):
    """U-Net with ``pools`` down-samplings; see the module docstring for the layout."""

    def __init__(self, in_channels: int = 16, out_channels: int = 3, base: int = 32, pools: int = 4):
        super().__init__()
        if pools < 1:
            raise ValueError("the U-Net needs at least one pooling level")
        widths = [base * 2**i for i in range(pools)]
        self.pools = pools
        self.down = nn.ModuleList(_block(cin, w) for cin, w in zip([in_channels] + widths[:-1], widths))
        self.pool = nn.MaxPool2d(2)
        self.middle = nn.Sequential(_block(widths[-1], widths[-1]), _up(widths[-1]))
        self.decode = nn.ModuleList()
        for i in reversed(range(pools)):
            out = widths[i - 1] if i > 0 else widths[0]
            layers = [_block(2 * widths[i], out)] + ([_up(out)] if i > 0 else [])
            self.decode.append(nn.Sequential(*layers))
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        skips = []
        x = z
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.middle(x)
        for stage in self.decode:
            x = stage(torch.cat([skips.pop(), x], dim=1))
        return torch.tanh(self.head(x))
