"""Configuration dataclasses: everything that decides a result is a field here and lands in the card."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from engine.data.augment import POLICIES
from engine.errors import ConfigError
from engine.method.losses import LOSSES
from engine.residuals.registry import DEFAULT_EXTRACTOR

METHODS = ("dif", "marra18", "joslin20")
CORRELATIONS = ("plain", "periodic", "periodic-rgb", "phase", "shift-max")
OFFSETS = "plain+offsets"  # a bench statistic: the plain fit read as `dif detect` reads it (offsets on)
DECISIONS = ("real-fpr", "closer-mean")


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
    loss: str = "hinge"  # paper Eq. 6; "squared" is the earlier variant, kept for comparison
    # the paper's m = 0.01 binds on FFDNet residuals (every fit ends at |mu_fake - mu_real| ~ m);
    # 0.05 transferred better on the shared sets (docs/RESULTS.md)
    margin: float = 0.05
    ema: float = 0.99
    z_channels: int = 16
    z_scale: float = 0.1
    z_noise: float = 0.03
    unet_base: int = 32
    unet_pools: int = 4  # the reference U-Net's depth (3.7M parameters at base 32)
    correlation: str = "plain"
    # "real-fpr": flag past a cut set on real photos at target_fpr; "closer-mean": the paper's rule
    decision: str = "real-fpr"
    # 2%: a 146-photo pool's 1% quantile rests on its top one or two photos (docs/RESULTS.md)
    target_fpr: float = 0.02
    # the JPEG reading's own target (0: target_fpr). Evidence in a JPEG is weaker, and a user may accept more
    # false positives there to find more (measured at 0.1: docs/RESULTS.md, "The JPEG check")
    jpeg_target_fpr: float = 0.0
    pad: bool = False
    # when the generated training images carry a known watermark, embed it into the real ones too
    # (engine/provenance/watermark_match.py), so that the fingerprint cannot separate the classes by the mark
    watermark_match: bool = True
    # share of the real training images that get the mark. All of them (1.0) teaches the fingerprint
    # our marking as a "real" trait, none (watermark_match=False) the mark as a "generated" one; half
    # leaves the mark uninformative within the real class (measured: docs/RESULTS.md)
    watermark_share: float = 0.5
    # degraded copies of both classes fitted beside the originals (engine/data/augment.py): "none", "jpeg", "world", ...
    augment: str = "none"
    augment_copies: int = 2  # per training image
    # re-save every training, calibration and test image as JPEG at this quality (0: off), when one
    # class is JPEG and the other is not (engine/data/format_bias.py)
    resave_jpeg: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown method {self.method!r} (choose from {', '.join(METHODS)})")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r} (choose from {', '.join(LOSSES)})")
        if not 0 < self.margin <= 1:
            raise ConfigError(f"margin {self.margin} out of range (0, 1]")
        if not 0 < self.lr <= 1:
            raise ConfigError(f"learning rate {self.lr} out of range (0, 1]")
        if not 1 <= self.unet_pools <= 6:
            raise ConfigError(f"unet_pools {self.unet_pools} out of range 1..6")
        if self.decision not in DECISIONS:
            raise ConfigError(f"unknown decision rule {self.decision!r} (choose from {', '.join(DECISIONS)})")
        if not 0 < self.watermark_share <= 1:
            raise ConfigError(f"watermark_share {self.watermark_share} out of range (0, 1]")
        if not 0 < self.target_fpr < 0.5:
            raise ConfigError(f"target_fpr {self.target_fpr} out of range (0, 0.5)")
        if self.jpeg_target_fpr and not 0 < self.jpeg_target_fpr < 0.5:
            raise ConfigError(f"jpeg_target_fpr {self.jpeg_target_fpr} out of range (0, 0.5) (0: target_fpr)")
        if self.augment not in POLICIES:
            raise ConfigError(f"unknown augmentation {self.augment!r} (choose from {', '.join(POLICIES)})")
        if not 0 <= self.augment_copies <= 16:
            raise ConfigError(f"augment_copies {self.augment_copies} out of range 0..16")
        if self.resave_jpeg and not 10 <= self.resave_jpeg <= 100:
            raise ConfigError(f"resave_jpeg {self.resave_jpeg} out of range 10..100 (0 turns it off)")
        if self.correlation not in CORRELATIONS:
            raise ConfigError(f"unknown correlation {self.correlation!r} (choose from {', '.join(CORRELATIONS)})")
        if self.crop < 32 or self.crop > 4096:
            raise ConfigError(f"crop {self.crop} out of range 32..4096")
        if self.border < 0 or 2 * self.border >= self.crop:
            raise ConfigError(f"border {self.border} too large for crop {self.crop}")
        multiple = max(8, 2**self.unet_pools)
        if (self.crop - 2 * self.border) % multiple:
            raise ConfigError(
                f"crop - 2*border = {self.crop - 2 * self.border} must be a multiple of {multiple} (the 8-pixel grid "
                "and the U-Net depth)"
            )
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
