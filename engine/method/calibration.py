"""A calibrated confidence and an "inconclusive" band on top of the threshold-free rule.

The two training populations of rho are modelled as Gaussians (mean, std per class). The posterior
P(generated | rho) with equal priors gives each decision a confidence; where neither class reaches
``level`` the verdict is "inconclusive". The card records the band and the fraction of the
calibration real images that would still be called generated (the false-positive rate at that level).

The DIF fingerprint was optimised on its training images, so training-set spreads are optimistic:
calibrate on held-out images (``calibrate(..., source="held-out")``) whenever they exist.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

MIN_STD = 1e-6


@dataclass(frozen=True)
class Calibration:
    mu_real: float
    sd_real: float
    mu_fake: float
    sd_fake: float
    level: float
    n_real: int
    n_fake: int
    source: str
    fpr_real: float  # calibration real images called "generated" at this level
    inconclusive_real: float  # calibration real images left inconclusive
    inconclusive_fake: float

    def posterior(self, rho: np.ndarray | float) -> np.ndarray:
        """P(generated | rho), equal priors."""
        rho = np.asarray(rho, dtype=np.float64)
        log_f = -0.5 * ((rho - self.mu_fake) / self.sd_fake) ** 2 - math.log(self.sd_fake)
        log_r = -0.5 * ((rho - self.mu_real) / self.sd_real) ** 2 - math.log(self.sd_real)
        return 1.0 / (1.0 + np.exp(np.clip(log_r - log_f, -700, 700)))

    def verdict(self, rho: np.ndarray | float) -> np.ndarray:
        p = self.posterior(rho)
        return np.where(p >= self.level, "generated", np.where(p <= 1 - self.level, "real", "inconclusive"))

    def confidence(self, rho: np.ndarray | float) -> np.ndarray:
        p = self.posterior(rho)
        return np.maximum(p, 1 - p)

    def held_out_rates(self, rho_real: np.ndarray, rho_fake: np.ndarray) -> dict[str, float]:
        """The band on held-out images: real ones called generated, and each class left inconclusive."""
        v_r, v_f = self.verdict(rho_real), self.verdict(rho_fake)
        return {
            "fpr_real_at_level": float(np.mean(v_r == "generated")),
            "inconclusive_real": float(np.mean(v_r == "inconclusive")),
            "inconclusive_fake": float(np.mean(v_f == "inconclusive")),
        }

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Calibration":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def calibrate(rho_real: np.ndarray, rho_fake: np.ndarray, level: float = 0.9, source: str = "training") -> Calibration:
    """Fit the two Gaussians and measure the band's rates on the same images."""
    rho_real, rho_fake = np.asarray(rho_real, np.float64), np.asarray(rho_fake, np.float64)
    if len(rho_real) < 2 or len(rho_fake) < 2:
        raise ValueError("calibration needs at least two images per class")
    cal = Calibration(
        float(rho_real.mean()),
        max(float(rho_real.std(ddof=1)), MIN_STD),
        float(rho_fake.mean()),
        max(float(rho_fake.std(ddof=1)), MIN_STD),
        level,
        len(rho_real),
        len(rho_fake),
        source,
        0.0,
        0.0,
        0.0,
    )
    v_real, v_fake = cal.verdict(rho_real), cal.verdict(rho_fake)
    return Calibration(
        **{
            **cal.to_dict(),
            "fpr_real": float(np.mean(v_real == "generated")),
            "inconclusive_real": float(np.mean(v_real == "inconclusive")),
            "inconclusive_fake": float(np.mean(v_fake == "inconclusive")),
        }
    )


def from_card(calibration: dict) -> Calibration | None:
    try:
        return Calibration.from_dict(calibration) if calibration else None
    except (KeyError, TypeError):
        return None


def pool_calibration(rho_pool: np.ndarray, rho_fake: np.ndarray) -> tuple[float, Calibration | None]:
    """mu_real and the band with the real side measured on a pool of real photos.

    The generated side comes from ``rho_fake`` (calibration images); the band is None when either
    side has fewer than two images. The one place pool calibration is computed: the trained card
    (``api.calibrate_on_pool``) and the benchmark's pool rows both read it from here.
    """
    rho_pool = np.asarray(rho_pool, np.float64)
    rho_fake = np.asarray(rho_fake, np.float64)
    band = calibrate(rho_pool, rho_fake, source="reference-pool") if len(rho_pool) >= 2 and len(rho_fake) >= 2 else None
    return float(rho_pool.mean()), band
