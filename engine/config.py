"""Configuration dataclasses: everything that decides a result is a field here and lands in the card."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from engine.denoisers import DEFAULT_EXTRACTOR
from engine.errors import ConfigError

METHODS = ("dif", "marra18", "joslin20")
CORRELATIONS = ("plain", "shift-max")


@dataclass(frozen=True)
class TrainConfig:
    """Fingerprint training settings (defaults follow the paper; see README for the step count)."""

    method: str = "dif"
    steps: int = 300
    batch: int = 64
    crop: int = 256
    border: int = 8
    extractor: str = DEFAULT_EXTRACTOR
    seed: int = 0
    lr: float = 5e-4
    weight_decay: float = 0.01
    margin: float = 0.01
    ema: float = 0.99
    z_channels: int = 16
    z_scale: float = 0.1
    z_noise: float = 0.03
    unet_base: int = 32
    correlation: str = "plain"
    pad: bool = False
    # when the generated training images carry a known watermark, embed it into the real ones too
    # (engine/watermark_match.py), so that the fingerprint cannot separate the classes by the mark
    watermark_match: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown method {self.method!r} (choose from {', '.join(METHODS)})")
        if self.correlation not in CORRELATIONS:
            raise ConfigError(f"unknown correlation {self.correlation!r} (choose from {', '.join(CORRELATIONS)})")
        if self.crop < 32 or self.crop > 4096:
            raise ConfigError(f"crop {self.crop} out of range 32..4096")
        if self.border < 0 or 2 * self.border >= self.crop:
            raise ConfigError(f"border {self.border} too large for crop {self.crop}")
        if (self.crop - 2 * self.border) % 8:
            raise ConfigError(f"crop - 2*border = {self.crop - 2 * self.border} must be a multiple of 8 (U-Net depth)")
        if self.steps < 1 or self.batch < 2 or self.batch % 2:
            raise ConfigError("steps must be >= 1 and batch an even number >= 2")

    @property
    def size(self) -> int:
        """Side of the residual / fingerprint after trimming the border."""
        return self.crop - 2 * self.border

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
