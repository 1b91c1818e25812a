"""The JPEG quality a file was saved at, read from its luminance quantisation table.

A suspect's compression decides how far its fingerprint reading can be trusted and which statistic
reads it best (docs/RESULTS.md, "Robustness"), so the quality travels with the decoded image.
"""

from __future__ import annotations

import io

import numpy as np

# IJG / JPEG Annex K luminance table at quality 50, in natural (row-major) order, as Pillow reports it.
# fmt: off
STD_LUMA = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)
# fmt: on


def quality_from_tables(tables: dict | None) -> float | None:
    """Estimated IJG quality (1-100) from Pillow's ``quantization`` tables, else None."""
    luma = (tables or {}).get(0)
    if not luma or len(luma) != 64:
        return None
    scale = 100.0 * sum(luma) / sum(STD_LUMA)  # IJG: table = std * scale / 100
    quality = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return float(min(100.0, max(1.0, quality)))


def luma_table(quality: float) -> np.ndarray:
    """The 8 x 8 luminance quantisation steps (row-major) an IJG encoder such as Pillow's uses at ``quality``."""
    q = min(100.0, max(1.0, float(quality)))
    scale = 5000.0 / q if q < 50 else 200.0 - 2.0 * q
    return np.clip(np.floor((np.asarray(STD_LUMA, dtype=np.float64) * scale + 50.0) / 100.0), 1.0, 255.0)


def jpeg_quality(data: bytes) -> float | None:
    """Estimated IJG quality (1-100) of JPEG bytes, else None (not a JPEG, or unreadable)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format != "JPEG":
                return None
            return quality_from_tables(getattr(img, "quantization", None))
    except Exception:
        return None
