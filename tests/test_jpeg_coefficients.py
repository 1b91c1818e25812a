"""The sign leans of a JPEG's quantised coefficients (engine/method/jpeg_coefficients.py), on real photos."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import photo_tiles
from PIL import Image
from scipy.fft import dctn

from engine.data.images import load_image
from engine.data.jpeg import luma_table
from engine.method.jpeg_coefficients import sign_lean


def _jpeg(pixels: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.mark.parametrize("quality", [90, 75, 50])
def test_luma_table_is_the_table_pillow_writes(quality):
    tile = photo_tiles(64)[0][1]
    written = Image.open(io.BytesIO(_jpeg(tile, quality))).quantization[0]
    assert luma_table(quality).tolist() == list(written)


def test_photos_lean_no_way_and_a_faint_block_pattern_tips_the_rounding_its_way():
    """Re-saved at JPEG 75, photos' leans are about standard normal; the same photos carrying a faint
    8 x 8 pattern (1.5 grey levels per pixel, under a third of the smallest step, 5) lean with the pattern's
    own DCT coefficients, and the pattern is read only at the block grid it was written on."""
    tiles = [pixels for _, pixels in photo_tiles(128)]
    rng = np.random.default_rng(0)
    block = rng.standard_normal((8, 8))
    block -= block.mean()
    block *= 1.5 / block.std()
    pattern = np.tile(block, (16, 16))[..., None]
    clean = np.stack([sign_lean(_decoded(_jpeg(t, 75)), 75) for t in tiles])
    marked = [np.clip(t + pattern, 0, 255).round().astype(np.uint8) for t in tiles]
    leaned = np.stack([sign_lean(_decoded(_jpeg(m, 75)), 75) for m in marked])
    assert len(tiles) >= 20 and clean.shape == leaned.shape == (len(tiles), 63)
    assert abs(clean.mean()) < 0.3 and 0.5 < clean.std() < 2.0
    # the mean lean points along the pattern's coefficients, where the photos' does not
    expected = dctn(block, norm="ortho").ravel()[1:]
    assert np.corrcoef(leaned.mean(axis=0), expected)[0, 1] > 0.6
    assert abs(np.corrcoef(clean.mean(axis=0), expected)[0, 1]) < 0.4
    # read off the grid (the blocks start 3 pixels in), the lean is gone
    shifted = np.stack([sign_lean(_decoded(_jpeg(m, 75)), 75, grid=(3, 3)) for m in marked])
    assert np.corrcoef(shifted.mean(axis=0), expected)[0, 1] < 0.4


def test_a_cropped_jpeg_keeps_its_block_grid(tmp_path):
    """A JPEG larger than the crop is read at its own block grid: the crop's leans are those of the
    file's blocks that lie inside it."""
    pixels = photo_tiles(300, per_photo=1)[0][1]
    path = tmp_path / "big.jpg"
    path.write_bytes(_jpeg(pixels, 75))
    image = load_image(path, crop=256)  # centre crop from row and column 22: the file's blocks start 2 in
    assert image.jpeg_grid == (2, 2) and image.jpeg_quality == pytest.approx(75, abs=1)
    whole = _decoded(path.read_bytes())
    inside = whole[24 : 24 + 248, 24 : 24 + 248]  # the 31 x 31 whole blocks inside the crop
    assert sign_lean(image.pixels, image.jpeg_quality, image.jpeg_grid) == pytest.approx(sign_lean(inside, 75))
    assert not np.allclose(sign_lean(image.pixels, 75), sign_lean(inside, 75))
