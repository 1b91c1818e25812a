"""Residual extractors: the weight-free wavelet denoiser and the shipped DnCNN weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.residuals.registry import DNCNN_WEIGHTS, dncnn_card, get_extractor
from engine.residuals.wavelet import haar_analysis, haar_synthesis


def _photo_crops(size: int = 96) -> torch.Tensor:
    from skimage import data

    crops = [data.astronaut()[100 : 100 + size, 200 : 200 + size], data.coffee()[150 : 150 + size, 300 : 300 + size]]
    return torch.from_numpy(np.stack(crops).astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / torch.mean((a - b) ** 2)))


def test_haar_transform_is_exactly_invertible():
    x = torch.rand(2, 3, 32, 48)
    np.testing.assert_allclose(haar_synthesis(*haar_analysis(x)).numpy(), x.numpy(), atol=1e-6)


@pytest.mark.parametrize("name", ["wavelet", "dncnn"])
def test_extractor_residual_is_mostly_the_added_noise(name):
    """Both extractors are denoisers: removing the residual brings a noisy photo closer to the clean one."""
    if name == "dncnn" and not DNCNN_WEIGHTS.exists():
        pytest.skip("DnCNN weights not shipped in this checkout")
    clean = _photo_crops()
    noisy = clean + torch.randn(clean.shape, generator=torch.Generator().manual_seed(0)) * (10 / 255)
    residual = get_extractor(name, torch.device("cpu"))(noisy)
    assert residual.shape == noisy.shape
    assert _psnr(noisy - residual, clean) > _psnr(noisy, clean)


def test_dncnn_card_records_data_steps_and_psnr():
    if not DNCNN_WEIGHTS.exists():
        pytest.skip("DnCNN weights not shipped in this checkout")
    card = dncnn_card()
    assert card is not None and card["layers"] == 17 and card["steps_done"] > 0
    assert card["train_photos"] and card["holdout_photos"]
    for sigma in ("sigma_5", "sigma_10", "sigma_15"):
        assert set(card["psnr_holdout"][sigma]) == {"noisy_psnr", "denoised_psnr"}
    import hashlib

    assert hashlib.sha256(DNCNN_WEIGHTS.read_bytes()).hexdigest() == card["weights_sha256"]
    json.dumps(card)
