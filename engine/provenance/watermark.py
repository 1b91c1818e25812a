"""Reading the invisible DWT-DCT watermark of the reference Stable Diffusion scripts.

The reference txt2img/img2img scripts mark every output with the ``invisible-watermark`` package:
``WatermarkEncoder().set_watermark("bytes", b"StableDiffusionV1")`` then ``encode(bgr, "dwtDct")``.
The decoder reads 136 bits back. The exact text only survives when the image keeps its original
size and block grid; a crop shifts the order in which the 8x8 blocks carry the bits, so the text
breaks while part of the bits still agree with the payload. Two presence statistics are kept:

- ``bit_agreement``: fraction of the 136 decoded bits equal to the payload's, as the package decodes
  them (unmarked images sit near 0.5, coin flips; marked ones above).
- ``aligned_agreement``: the same after undoing the crop. The encoder writes bit
  ``(i * W + j) mod 136`` into the 8x8 block at block row i, column j of a W-block-wide image, so a
  crop only changes W and adds a constant offset k. Reading every block's bit separately (the
  decoder with one slot per block) and trying the usual generator widths (512, 768, 1024 px and
  the image's own) with all 136 offsets recovers the payload from crops whose grid stays aligned to
  8 pixels (a centre crop of a 512x512 image to 256x256 is). The maximum over up to 5 x 136 hypotheses
  lifts unmarked images above 0.5 too, hence its own thresholds.

The decoder is the ``invisible-watermark`` package (import ``imwatermark``), called, not copied.
When it cannot be imported the reading says so instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.errors import ConfigError

SD_PAYLOAD = b"StableDiffusionV1"
SD_GENERATOR = "Stable Diffusion (reference scripts)"
METHOD = "dwtDct"
MIN_PIXELS = 256 * 256  # the decoder refuses smaller images
WINDOW = 1024  # decoding costs ~40 us per 8x8 block in Python: larger images are read in a centre window
# Thresholds on aligned agreement, measured (docs/METHOD.md, "Provenance signals and the watermark confound"):
# 360 unmarked real tiles reached 0.50-0.70 (the maximum over hypotheses), 196 SD 256x256 crops
# 0.50-1.00 (median 0.93); 0.72 flagged 85% of the SD crops and none of the real tiles.
ALIGNED_PRESENT = 0.72
ALIGNED_STRONG = 0.85
ORIGINAL_WIDTHS = (512, 768, 1024)  # common generator output widths, in pixels
BLOCK = 8  # pixels per watermark block side (haar DWT halves, then 4x4 DCT blocks)


@dataclass(frozen=True)
class WatermarkReading:
    """One decode: the text, the agreement with the known payload, and whether it matched."""

    available: bool  # decoder importable and image large enough
    text: str = ""  # decoded bytes as text (non-printable shown as '?')
    bit_agreement: float | None = None  # fraction of payload bits recovered, 0..1
    exact: bool = False  # decoded text equals the known payload
    aligned_agreement: float | None = None  # best agreement over crop hypotheses, 0..1
    aligned_text: str = ""  # the text read under that hypothesis
    alignment: dict | None = None  # {"original_width": px, "offset": bits} of that hypothesis
    generator: str | None = None  # known generator whose payload matched (exactly or by agreement)
    reason: str = ""  # why nothing was read, when not available

    def to_dict(self) -> dict:
        return {
            "available": self.available,
            "text": self.text,
            "bit_agreement": self.bit_agreement,
            "exact": self.exact,
            "aligned_agreement": self.aligned_agreement,
            "aligned_text": self.aligned_text,
            "alignment": self.alignment,
            "generator": self.generator,
            "reason": self.reason,
        }


def payload_bits(payload: bytes = SD_PAYLOAD) -> np.ndarray:
    """The payload as the encoder lays it out: bytes unpacked most significant bit first."""
    return np.unpackbits(np.frombuffer(payload, dtype=np.uint8)).astype(bool)


def _printable(raw: bytes) -> str:
    return "".join(chr(b) if 32 <= b < 127 else "?" for b in raw)


MISSING = "the SD watermark needs invisible-watermark (and OpenCV): pip install 'dif-lineage[provenance]'"


def decoder_available() -> bool:
    """Whether the SD watermark can be read here (the optional ``imwatermark`` imports)."""
    try:
        imwatermark()
    except ConfigError:
        return False
    return True


def imwatermark():
    """The ``imwatermark`` module, or ConfigError saying how to install it (it is an optional extra)."""
    try:
        import imwatermark
    except ImportError as exc:  # also a missing native piece of OpenCV on a headless box
        raise ConfigError(f"{MISSING} ({type(exc).__name__}: {exc})") from None
    return imwatermark


def embed_sd_watermark(rgb: np.ndarray, payload: bytes = SD_PAYLOAD) -> np.ndarray:
    """Mark an RGB uint8 image as the reference SD scripts do (used to make test and benchmark images)."""
    encoder = imwatermark().WatermarkEncoder()
    encoder.set_watermark("bytes", payload)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    return np.ascontiguousarray(encoder.encode(bgr, METHOD)[:, :, ::-1])


def block_bits(bgr: np.ndarray) -> np.ndarray:
    """Every watermark block's own bit (rows x cols of 0/1): the decoder given one slot per block."""
    WatermarkDecoder = imwatermark().WatermarkDecoder

    height, width = bgr.shape[:2]
    rows, cols = (height // 4 * 4) // 2 // 4, (width // 4 * 4) // 2 // 4
    bits = WatermarkDecoder("bits", rows * cols).decode(bgr, METHOD)
    return np.asarray(bits, dtype=np.int64).reshape(rows, cols)


def aligned_agreement(blocks: np.ndarray, expected: np.ndarray, extra_width: int = 0) -> tuple[float, np.ndarray, dict]:
    """Best payload agreement over (original width, bit offset) hypotheses; see the module docstring."""
    rows, cols = blocks.shape
    n = expected.size
    ii, jj = np.mgrid[0:rows, 0:cols]
    flat = blocks.ravel()
    best: tuple[float, np.ndarray, dict] = (-1.0, expected, {})
    widths = sorted({w // BLOCK for w in ORIGINAL_WIDTHS} | {cols} | ({extra_width} if extra_width else set()))
    for width in widths:
        base = (ii * width + jj).ravel()
        for offset in range(n):
            slot = (base + offset) % n
            ones = np.bincount(slot, weights=flat, minlength=n)
            count = np.bincount(slot, minlength=n)
            decoded = ones * 2 > count
            score = float(np.mean(decoded == expected))
            if score > best[0]:
                best = (score, decoded, {"original_width": width * BLOCK, "offset": offset})
    return best


def read_sd_watermark(rgb: np.ndarray, payload: bytes = SD_PAYLOAD) -> WatermarkReading:
    """Decode the DWT-DCT watermark from an H x W x 3 uint8 RGB array and compare it with ``payload``."""
    height, width = rgb.shape[:2]
    if height * width < MIN_PIXELS:
        return WatermarkReading(False, reason=f"image is {width}x{height}, smaller than the decoder's 256x256 minimum")
    try:
        WatermarkDecoder = imwatermark().WatermarkDecoder
    except ConfigError as exc:
        return WatermarkReading(False, reason=str(exc))
    # a window offset by a multiple of 8 px keeps the block grid; its bit offset is one of the hypotheses
    top, left = max(0, (height - WINDOW) // 2) // BLOCK * BLOCK, max(0, (width - WINDOW) // 2) // BLOCK * BLOCK
    rgb = rgb[top : top + WINDOW, left : left + WINDOW]
    expected = payload_bits(payload)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    try:
        bits = np.asarray(WatermarkDecoder("bits", expected.size).decode(bgr, METHOD), dtype=bool)
        aligned, aligned_bits, alignment = aligned_agreement(block_bits(bgr), expected, (width // 4 * 4) // 2 // 4)
    except Exception as exc:  # decoder boundary: a failure is reported, never raised
        return WatermarkReading(False, reason=f"decoder failed ({type(exc).__name__}: {exc})")
    raw = np.packbits(bits).tobytes()
    aligned_raw = np.packbits(aligned_bits).tobytes()
    exact = raw == payload
    present = exact or aligned_raw == payload or aligned >= ALIGNED_PRESENT
    return WatermarkReading(
        True,
        _printable(raw),
        round(float(np.mean(bits == expected)), 4),
        exact,
        round(aligned, 4),
        _printable(aligned_raw),
        alignment,
        SD_GENERATOR if present else None,
    )
