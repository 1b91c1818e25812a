"""The FFDNet extractor: the authors' weights really denoise photos, and its identity reaches the cache keys."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import photo_tiles

from engine.errors import ConfigError
from engine.residuals.ffdnet import load_ffdnet
from engine.residuals.registry import get_extractor


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / float(((a - b) ** 2).mean()))


@pytest.fixture(scope="module")
def clean() -> torch.Tensor:
    tiles = [t for _, t in photo_tiles(96)][:6]
    return torch.stack([torch.from_numpy(t).permute(2, 0, 1).float() / 255.0 for t in tiles])


@pytest.mark.parametrize("sigma", [5.0, 15.0])
def test_trained_weights_remove_noise_of_their_level(clean, sigma):
    net, _ = load_ffdnet()
    noisy = (clean + torch.randn(clean.shape, generator=torch.Generator().manual_seed(0)) * sigma / 255.0).clamp(0, 1)
    with torch.inference_mode():
        denoised = net(noisy, sigma / 255.0)
    gain = _psnr(denoised, clean) - _psnr(noisy, clean)
    assert gain > 2.0, f"FFDNet gained only {gain:.2f} dB at sigma {sigma}"
    # an untrained network of the same shape does not denoise: the gain comes from the weights
    torch.manual_seed(0)
    from engine.residuals.ffdnet import FFDNet

    with torch.inference_mode():
        assert _psnr(FFDNet()(noisy, sigma / 255.0), clean) < _psnr(noisy, clean)


def test_residual_is_small_on_photos_and_batched_equals_one_by_one(clean):
    ext = get_extractor("ffdnet-s5", torch.device("cpu"))
    batched = ext(clean, batch_size=6)
    single = torch.cat([ext(clean[i : i + 1], batch_size=1) for i in range(len(clean))])
    assert torch.allclose(batched, single, atol=1e-5)
    assert batched.abs().mean() < 0.02  # a residual, not the image
    assert batched.shape == clean.shape


def test_noise_level_and_weights_are_part_of_the_identity():
    s5, s15 = get_extractor("ffdnet-s5", torch.device("cpu")), get_extractor("ffdnet-s15", torch.device("cpu"))
    assert (
        s5.cache_id.startswith("ffdnet-s5-")
        and s15.cache_id.startswith("ffdnet-s15-")
        and s5.cache_id[-16:] == s15.cache_id[-16:]
    )


def test_a_bad_weights_file_is_one_line_naming_it(tmp_path):
    bad = tmp_path / "ffdnet_color.pth"
    bad.write_bytes(b"\x80\x04not a state dict")
    with pytest.raises(ConfigError) as err:
        load_ffdnet(bad)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
