"""The fingerprint methods behind one registry: how each fits a fingerprint and what it correlates with.

- ``dif``: the learned U-Net fingerprint (Sinitsa & Fried 2024), correlation in the pixel domain.
- ``marra18``: the mean residual of the generated training images (Marra et al. 2018).
- ``joslin20``: the mean magnitude spectrum of the generated residuals, correlated in the Fourier
  domain (Joslin & Hao 2020).
All three use the same residuals, the same correlation and the same closer-mean decision rule,
so any comparison between them is one call. Callers ask a method what it *is* (``learned``), never
compare its name, so a new method is one entry here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

from engine.errors import ConfigError
from engine.method.config import METHODS, TrainConfig
from engine.method.dif import FitResult, ProgressFn, TrainProgress, fit_dif


def spectrum(residuals: torch.Tensor) -> torch.Tensor:
    """Per-channel magnitude spectrum |FFT2(R)| (same shape as R): the Joslin20 feature."""
    return torch.fft.fft2(residuals.float()).abs()


def _identity(residuals: torch.Tensor) -> torch.Tensor:
    return residuals


@dataclass(frozen=True)
class Method:
    """One way to make a fingerprint.

    ``learned``: optimised over steps on its training images, so their correlations overstate the
    class gap (calibrate on held-out images) and a step callback is meaningful. Otherwise the
    fingerprint is the mean of its generated images' features (leave-one-out scores calibrate it).
    """

    name: str
    features: Callable[[torch.Tensor], torch.Tensor]
    learned: bool


_REGISTRY = {
    "dif": Method("dif", _identity, learned=True),
    "marra18": Method("marra18", _identity, learned=False),
    "joslin20": Method("joslin20", spectrum, learned=False),
}
assert tuple(_REGISTRY) == METHODS, "engine.method.config.METHODS names the registry's entries"


def get_method(name: str) -> Method:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown method {name!r} (choose from {', '.join(_REGISTRY)})") from None


def features(method: str, residuals: torch.Tensor) -> torch.Tensor:
    """What a fingerprint of ``method`` is correlated with."""
    return get_method(method).features(residuals)


def fit(
    method: str,
    real: torch.Tensor,
    fake: torch.Tensor,
    config: TrainConfig,
    device: torch.device,
    progress: ProgressFn | None = None,
) -> FitResult:
    """Fit a fingerprint of ``method`` from real / generated training residuals."""
    spec = get_method(method)
    if spec.learned:
        return fit_dif(real, fake, config, device, progress)
    start = time.time()
    tensor = spec.features(fake).mean(dim=0)
    if progress is not None:
        progress(TrainProgress(1, 1, 0.0, 0.0, 0.0, time.time() - start))
    return FitResult(tensor.contiguous(), [], time.time() - start)


def leave_one_out_rho(method: str, tensor: torch.Tensor, fake: torch.Tensor, mode: str = "plain") -> torch.Tensor:
    """For a mean fingerprint: each generated training image against the mean of the *others*.

    The mean contains every training image, so scoring an image against it overstates mu_fake.
    """
    from engine.method.correlation import rho_matrix

    feats = features(method, fake)
    n = feats.shape[0]
    others = (tensor.unsqueeze(0) * n - feats) / (n - 1)
    return torch.stack([rho_matrix(feats[i : i + 1], others[i : i + 1], mode=mode)[0, 0] for i in range(n)])
