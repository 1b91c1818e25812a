"""Where tensors run: the GPU when present, the CPU everywhere else (``DIF_DEVICE`` overrides)."""

from __future__ import annotations

import os
import platform

import torch


def default_device() -> torch.device:
    """``DIF_DEVICE`` if set, else CUDA when available, else CPU."""
    wanted = os.environ.get("DIF_DEVICE")
    if wanted:
        return torch.device(wanted)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def describe_device(device: torch.device | None = None) -> str:
    """A short human description, shown by the CLI and the dashboard."""
    device = device or default_device()
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def environment(device: torch.device) -> dict:
    """What a benchmark's numbers were measured on, written beside them in its results."""
    return {
        "device": describe_device(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNG and return a CPU generator for explicit sampling."""
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen
