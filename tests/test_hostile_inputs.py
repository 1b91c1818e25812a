"""Hostile and broken image inputs: every input ends in a decoded image or our own ImageLoadError.

The fuzz budget is fixed for CI (``DIF_FUZZ_EXAMPLES``, default 300 per format); set it higher for
a longer opt-in run, e.g. ``DIF_FUZZ_EXAMPLES=20000 pytest tests/test_hostile_inputs.py -s``.
"""

from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from engine.data.images import load_image
from engine.errors import ImageLoadError

EXAMPLES = int(os.environ.get("DIF_FUZZ_EXAMPLES", 300))
TRIED = {"inputs": 0, "decoded": 0, "refused": 0}


def _seed_file(fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    buf = io.BytesIO()
    img = Image.fromarray(arr)
    if fmt == "GIF":
        frames = [img.quantize(32), Image.fromarray(arr[::-1]).quantize(32)]
        frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    else:
        img.save(buf, fmt)
    return buf.getvalue()


SEEDS = {fmt: _seed_file(fmt) for fmt in ("PNG", "JPEG", "WEBP", "TIFF", "GIF", "BMP")}


def _outcome(data: bytes, tally: dict[str, int] = TRIED) -> str:
    tally["inputs"] += 1
    try:
        im = load_image(data, crop=None, max_pixels=4_000_000)
    except ImageLoadError as exc:
        assert str(exc).startswith("<bytes>: ") and "\n" not in str(exc)
        tally["refused"] += 1
        return "refused"
    assert im.pixels.ndim == 3 and im.pixels.shape[2] == 3 and im.pixels.dtype == np.uint8
    tally["decoded"] += 1
    return "decoded"


@st.composite
def mutated(draw, fmt: str) -> bytes:
    data = bytearray(SEEDS[fmt])
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "overwrite", "delete"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            data = data[:pos]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[pos : pos + len(chunk)] = chunk
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
    return bytes(data)


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=5000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_mutated_files_never_escape_as_other_exceptions(fmt):
    @FUZZ
    @given(mutated(fmt))
    def run(data):
        _outcome(data)

    run()


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data):
    _outcome(data)


def _png_with_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height (decompression-bomb shape)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload))
            + kind
            + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
    )


def test_huge_declared_dimensions_are_refused_before_decoding():
    assert _outcome(_png_with_header(100_000, 100_000)) == "refused"
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        load_image(_png_with_header(60_000, 60_000))


@pytest.mark.parametrize(
    "make, expect",
    [
        (lambda: Image.new("RGB", (1, 1)), "decoded"),
        (lambda: Image.new("RGB", (10000, 10)), "decoded"),
        (lambda: Image.fromarray(np.full((20, 20), 40000, np.uint16)), "decoded"),
        (lambda: Image.new("CMYK", (20, 20), (10, 20, 30, 40)), "decoded"),
        (lambda: Image.new("P", (20, 20)), "decoded"),
        (lambda: Image.new("LA", (20, 20)), "decoded"),
        (lambda: Image.new("1", (20, 20)), "decoded"),
        (lambda: Image.new("F", (20, 20), 3.5), "decoded"),
    ],
)
def test_unusual_but_valid_images_decode(make, expect):
    img = make()
    buf = io.BytesIO()
    img.save(buf, "TIFF")
    assert _outcome(buf.getvalue()) == expect


def test_wrong_extension_is_decoded_by_content(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(SEEDS["PNG"])
    assert load_image(path, crop=None).format == "PNG"


def test_report_inputs_tried():
    """Its own fuzz pass over every format (not the counts other tests left behind, so it runs alone too).

    The mutated files must reach both outcomes: decoded ones show the fuzz gets past the headers
    into the decoders, refused ones that the corruption is noticed; nothing else may escape.
    """
    tally = {"inputs": 0, "decoded": 0, "refused": 0}
    per_format = settings(FUZZ, max_examples=max(1, EXAMPLES // len(SEEDS)))
    for fmt in sorted(SEEDS):

        @per_format
        @given(mutated(fmt))
        def run(data):
            _outcome(data, tally)

        run()
    print(
        f"\nhostile-input fuzz: {tally['inputs']} inputs tried, {tally['decoded']} decoded, {tally['refused']} "
        "refused with ImageLoadError, 0 other exceptions"
    )
    assert tally["decoded"] + tally["refused"] == tally["inputs"]
    assert tally["inputs"] >= EXAMPLES // len(SEEDS) * len(SEEDS)
    assert tally["decoded"] > 0 and tally["refused"] > 0
