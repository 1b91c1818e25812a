"""Image loading rules and bad inputs, on images made here with Pillow."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from engine.data.images import center_crop, list_images, load_image, load_images
from engine.errors import ImageLoadError


def _encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _rgb(h: int = 80, w: int = 96, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_rgb_png_is_centre_cropped_exactly():
    arr = _rgb(80, 96)
    im = load_image(_encode(Image.fromarray(arr)), crop=64)
    assert im.pixels.shape == (64, 64, 3) and im.pixels.dtype == np.uint8
    np.testing.assert_array_equal(im.pixels, arr[8:72, 16:80])
    assert im.original_size == (96, 80)
    assert len(im.sha256) == 64


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF", "WEBP"])
def test_lossless_formats_round_trip(fmt):
    arr = _rgb(64, 64)
    kw = {"lossless": True} if fmt == "WEBP" else {}
    im = load_image(_encode(Image.fromarray(arr), fmt, **kw), crop=64)
    np.testing.assert_array_equal(im.pixels, arr)
    assert im.format == fmt


def test_jpeg_decodes_close_to_source():
    arr = np.full((64, 64, 3), 120, np.uint8)
    im = load_image(_encode(Image.fromarray(arr), "JPEG", quality=95), crop=64)
    assert np.abs(im.pixels.astype(int) - 120).max() <= 2


def test_gray_is_repeated_on_three_channels():
    gray = _rgb(64, 64)[:, :, 0]
    im = load_image(_encode(Image.fromarray(gray, "L")), crop=64)
    for c in range(3):
        np.testing.assert_array_equal(im.pixels[:, :, c], gray)
    assert any("gray" in n for n in im.notes)


def test_rgba_drops_alpha_without_compositing():
    arr = _rgb(64, 64)
    rgba = np.dstack([arr, np.zeros((64, 64), np.uint8)])  # fully transparent
    im = load_image(_encode(Image.fromarray(rgba, "RGBA")), crop=64)
    np.testing.assert_array_equal(im.pixels, arr)
    assert any("alpha" in n for n in im.notes)


def test_palette_with_transparency_becomes_rgb():
    img = Image.fromarray(_rgb(64, 64)).quantize(16)
    img.info["transparency"] = 0
    im = load_image(_encode(img, transparency=0), crop=64)
    np.testing.assert_array_equal(im.pixels, np.asarray(img.convert("RGB")))


def test_sixteen_bit_is_scaled_to_eight():
    values = np.array([[0, 257 * 100, 65535, 257 * 7]], dtype=np.uint16).repeat(64, 0)[:, :4]
    big = np.tile(values, (1, 16))
    im = load_image(_encode(Image.fromarray(big)), crop=None)
    assert im.pixels.dtype == np.uint8
    assert list(im.pixels[0, :4, 0]) == [0, 100, 255, 7]


def test_cmyk_goes_through_colour_conversion():
    cmyk = Image.new("CMYK", (64, 64), (0, 255, 255, 0))  # pure red
    im = load_image(_encode(cmyk, "JPEG", quality=100), crop=64)
    r, g, b = im.pixels[32, 32].astype(int)
    assert r > 200 and g < 60 and b < 60


def test_exif_orientation_is_applied():
    arr = np.zeros((40, 80, 3), np.uint8)
    arr[:, :40] = 255  # left half white
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 CW on display
    im = load_image(_encode(img, "JPEG", exif=exif.tobytes(), quality=100), crop=None)
    assert im.pixels.shape[:2] == (80, 40)
    assert im.pixels[5, 20].mean() > 200 and im.pixels[75, 20].mean() < 50  # white half now on top
    assert any("EXIF" in n for n in im.notes)


def test_first_frame_of_animation_is_used():
    frames = [Image.fromarray(np.full((64, 64, 3), v, np.uint8)) for v in (10, 200)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    im = load_image(buf.getvalue(), crop=64)
    assert im.pixels.mean() < 50 and any("frames" in n for n in im.notes)


def test_smaller_than_crop_is_an_error_unless_padding_asked():
    data = _encode(Image.fromarray(_rgb(40, 50)))
    with pytest.raises(ImageLoadError, match="smaller than the 64x64 crop"):
        load_image(data, crop=64)
    im = load_image(data, crop=64, pad=True)
    assert im.pixels.shape == (64, 64, 3) and any("padded" in n for n in im.notes)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty file"),
        (b"definitely not an image", "not a recognised image format"),
    ],
)
def test_bad_bytes_raise_one_clear_error(data, message):
    with pytest.raises(ImageLoadError, match=message):
        load_image(data, name="upload.png")


def test_truncated_png_names_the_file(tmp_path):
    path = tmp_path / "cut.png"
    path.write_bytes(_encode(Image.fromarray(_rgb(64, 64)))[:300])
    with pytest.raises(ImageLoadError) as err:
        load_image(path)
    assert str(path) in str(err.value) and "truncated" in str(err.value)


def test_decompression_bomb_is_refused_before_decoding():
    data = _encode(Image.new("L", (5000, 5000)))
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        load_image(data, max_pixels=1_000_000)


def test_folder_listing_is_recursive_sorted_and_filtered(tmp_path):
    for rel in ["b/2.png", "a.JPG", "b/1.webp", "notes.txt", ".hidden/x.png"]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    names = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert names == ["a.JPG", "b/1.webp", "b/2.png"]


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(ImageLoadError, match="no images found"):
        list_images(tmp_path)


def test_batch_skips_bad_files_unless_strict(tmp_path):
    good = tmp_path / "good.png"
    good.write_bytes(_encode(Image.fromarray(_rgb(64, 64))))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    images, errors = load_images([good, bad], crop=64)
    assert [im.source for im in images] == [str(good)] and len(errors) == 1 and str(bad) in str(errors[0])
    with pytest.raises(ImageLoadError):
        load_images([good, bad], crop=64, strict=True)


def test_center_crop_keeps_the_eight_pixel_phase_of_even_margins():
    arr = np.arange(512 * 512 * 3, dtype=np.int64).reshape(512, 512, 3)
    crop = center_crop(arr, 256)
    assert crop[0, 0, 0] == arr[128, 128, 0]


def test_the_centre_box_is_the_region_center_crop_analyses():
    """The box the dashboard draws for a single-crop analysis is exactly the region center_crop takes."""
    from engine.data.images import center_crop
    from engine.data.tiles import centre_box

    pixels = np.arange(300 * 500 * 3, dtype=np.int64).reshape(300, 500, 3)
    top, left, h, w = centre_box(300, 500, 256)
    assert np.array_equal(pixels[top : top + h, left : left + w], center_crop(pixels, 256))
    assert centre_box(100, 400, 256) == (0, 72, 100, 256)  # smaller side: the whole side (padded)


def test_empty_bytes_are_named_by_the_given_name():
    """Issue 13: a zero-byte upload was reported as '<bytes>: empty file'."""
    from engine.data.images import load_image
    from engine.errors import ImageLoadError

    with pytest.raises(ImageLoadError, match=r"^holiday\.png: empty file"):
        load_image(b"", crop=None, name="holiday.png")
