"""The Attribute page's metadata panel: EXIF, software tag and whether a C2PA manifest is present.

C2PA manifests travel in JUMBF boxes (ISO 19566-5): in JPEG inside APP11 segments, in PNG in a
``caBX`` chunk, in other containers as a ``jumb`` box whose description box is labelled ``c2pa``.
Finding the box bytes is enough to say "a manifest is present" (verifying it is another matter and
needs the C2PA toolkit); the scan is one pass of ``bytes.find``, no new dependency.
"""
from __future__ import annotations

import io
from typing import Any

from PIL import ExifTags, Image

SOFTWARE_KEYS = ("Software", "software", "parameters", "prompt", "Comment", "comment", "generator")


def c2pa_present(data: bytes) -> bool:
    """True when the file carries a JUMBF box labelled c2pa (JPEG APP11, PNG caBX, or a bare box)."""
    if b"caBX" in data[:64] or (data.startswith(b"\x89PNG") and b"caBX" in data):
        return True
    at = data.find(b"jumb")
    while at != -1:
        if b"c2pa" in data[at : at + 256]:
            return True
        at = data.find(b"jumb", at + 4)
    return False


def _printable(value: Any, limit: int = 200) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).replace("\x00", "")
    return text if len(text) <= limit else text[:limit] + "..."


def image_metadata(data: bytes) -> dict[str, Any]:
    """A JSON-able summary: format, size, EXIF (named tags), text chunks, software tag, C2PA presence."""
    out: dict[str, Any] = {"c2pa_manifest": c2pa_present(data)}
    try:
        with Image.open(io.BytesIO(data)) as img:
            out["format"] = img.format
            out["size"] = list(img.size)
            out["mode"] = img.mode
            exif = {ExifTags.TAGS.get(tag, str(tag)): _printable(v) for tag, v in img.getexif().items()}
            info = {str(k): _printable(v) for k, v in img.info.items() if isinstance(v, (str, bytes, int, float)) and k not in ("exif", "icc_profile")}
    except Exception as exc:  # the metadata panel never breaks the page
        out["error"] = f"cannot read metadata ({type(exc).__name__})"
        return out
    out["exif"] = exif
    out["text"] = info
    software = next((exif[k] for k in SOFTWARE_KEYS if k in exif), None) or next((info[k] for k in SOFTWARE_KEYS if k in info), None)
    out["software"] = software
    return out
