"""The zoo's image generators: tiny convolutional autoencoders whose up-sampling leaves a fingerprint.

An encoder halves the resolution twice; a decoder doubles it twice with one of three up-samplers
(transposed convolution, nearest-neighbour + convolution, pixel shuffle). Up-sampling layers paint a
periodic pattern set by their weights, which is exactly what DIF learns, so models that share
weights (checkpoints, fine-tunes) share most of the pattern and unrelated ones do not.
Training is plain Adam on an L1 reconstruction loss, seeded, on the CPU in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

UPSAMPLERS = ("tconv", "nearest", "shuffle")


def _up(kind: str, cin: int, cout: int) -> nn.Module:
    if kind == "tconv":
        return nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1)  # uneven overlap: checkerboard
    if kind == "nearest":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1))
    if kind == "shuffle":
        return nn.Sequential(nn.Conv2d(cin, cout * 4, 3, padding=1), nn.PixelShuffle(2))
    raise ValueError(f"unknown up-sampler {kind!r} (choose from {', '.join(UPSAMPLERS)})")


class TinyAutoencoder(nn.Module):
    """3 -> width -> 2*width at 1/4 resolution -> back to 3 channels through two up-samplers."""

    def __init__(self, upsampler: str = "tconv", width: int = 24):
        super().__init__()
        self.upsampler = upsampler
        self.encoder = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),
            nn.ReLU(),
        )
        self.decoder = nn.Sequential(
            _up(upsampler, 2 * width, width),
            nn.ReLU(),
            _up(upsampler, width, width),
            nn.ReLU(),
            nn.Conv2d(width, 3, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x * 2 - 1)) * 0.5 + 0.5


@dataclass(frozen=True)
class FitSpec:
    """One training (or fine-tuning) stage of a zoo generator."""

    steps: int
    lr: float
    seed: int
    batch: int = 16
    patch: int = 32
    style: str = "none"  # target transform: "none" (reconstruct) or "sepia"


def sepia(x: torch.Tensor) -> torch.Tensor:
    """A warm, contrasty 'style' the style fine-tune learns to add to its reconstructions."""
    m = torch.tensor([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], dtype=x.dtype)
    out = torch.einsum("ij,njhw->nihw", m, x)
    return ((out - 0.5) * 1.2 + 0.5).clamp(0, 1)


def to_batch(arrays: np.ndarray) -> torch.Tensor:
    """N x H x W x 3 uint8 -> N x 3 x H x W float in [0, 1]."""
    return torch.from_numpy(arrays).permute(0, 3, 1, 2).float().div(255.0)


def fit(
    model: TinyAutoencoder, photos: np.ndarray, spec: FitSpec, on_step: Callable[[int], None] | None = None
) -> TinyAutoencoder:
    """Train ``model`` in place on random patches of ``photos`` (N x H x W x 3 uint8) for ``spec.steps``."""
    gen = torch.Generator().manual_seed(spec.seed)
    data = to_batch(photos)
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr)
    n, _, h, w = data.shape
    model.train()
    for step in range(spec.steps):
        idx = torch.randint(0, n, (spec.batch,), generator=gen)
        ys = torch.randint(0, h - spec.patch + 1, (spec.batch,), generator=gen)
        xs = torch.randint(0, w - spec.patch + 1, (spec.batch,), generator=gen)
        batch = torch.stack(
            [
                data[i, :, y : y + spec.patch, x : x + spec.patch]
                for i, y, x in zip(idx.tolist(), ys.tolist(), xs.tolist())
            ]
        )
        target = sepia(batch) if spec.style == "sepia" else batch
        loss = (model(batch) - target).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if on_step is not None:
            on_step(step + 1)
    model.eval()
    return model


def new_model(upsampler: str, seed: int, width: int = 24) -> TinyAutoencoder:
    """A freshly initialised generator; the seed fixes its initial weights."""
    torch.manual_seed(seed)
    return TinyAutoencoder(upsampler, width)


def clone(model: TinyAutoencoder) -> TinyAutoencoder:
    """An independent copy (the starting point of a fine-tune or a continued run)."""
    copy = TinyAutoencoder(model.upsampler, model.encoder[0].out_channels)
    copy.load_state_dict(model.state_dict())
    return copy


@torch.inference_mode()
def generate(model: TinyAutoencoder, tiles: np.ndarray, batch: int = 32) -> np.ndarray:
    """The model's 'generated images': its outputs for ``tiles`` as N x H x W x 3 uint8."""
    outs = []
    for start in range(0, len(tiles), batch):
        y = model(to_batch(tiles[start : start + batch])).clamp(0, 1)
        outs.append((y * 255).round().byte().permute(0, 2, 3, 1).numpy())
    return np.concatenate(outs)
