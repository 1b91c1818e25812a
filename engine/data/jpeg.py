"""The JPEG quality a file was saved at, read from its luminance quantisation table.

A suspect's compression decides how far its fingerprint reading can be trusted and which statistic
reads it best (docs/RESULTS.md, "Robustness"), so the quality travels with the decoded image.
"""

from __future__ import annotations

import io

# IJG / JPEG Annex K luminance table at quality 50; only its sum is used, so the order does not matter.
# fmt: off
_STD_LUMA = (
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
    scale = 100.0 * sum(luma) / sum(_STD_LUMA)  # IJG: table = std * scale / 100
    quality = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return float(min(100.0, max(1.0, quality)))


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
