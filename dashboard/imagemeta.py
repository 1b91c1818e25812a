"""The Attribute page's metadata panel: EXIF, software tag and whether a C2PA manifest is present.

C2PA detection lives in the engine (:func:`engine.provenance.file_metadata.c2pa_present`, shared with
``dif provenance``); this module only shapes the panel's summary.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import ExifTags, Image

from engine.provenance.file_metadata import c2pa_present

SOFTWARE_KEYS = ("Software", "software", "parameters", "prompt", "Comment", "comment", "generator")


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
            info = {
                str(k): _printable(v)
                for k, v in img.info.items()
                if isinstance(v, (str, bytes, int, float)) and k not in ("exif", "icc_profile")
            }
    except Exception as exc:  # the metadata panel never breaks the page
        out["error"] = f"cannot read metadata ({type(exc).__name__})"
        return out
    out["exif"] = exif
    out["text"] = info
    software = next((exif[k] for k in SOFTWARE_KEYS if k in exif), None) or next(
        (info[k] for k in SOFTWARE_KEYS if k in info), None
    )
    out["software"] = software
    return out


def metadata_rows(data: bytes) -> list[dict[str, str]]:
    """EXIF, XMP and text chunks as (section, field, value) rows: a readable table, not JSON."""
    from engine.provenance.file_metadata import read_file_metadata

    meta = read_file_metadata(data)
    rows = [{"section": "file", "field": "container", "value": meta.container}]
    rows.append({"section": "C2PA", "field": "manifest", "value": "present" if meta.c2pa is not None else "none"})
    for section, fields in (("EXIF", meta.exif), ("XMP", meta.xmp_fields), ("text", meta.text)):
        rows += [{"section": section, "field": str(k), "value": _printable(v)} for k, v in sorted(fields.items())]
    rows += [{"section": "problem", "field": "", "value": p} for p in meta.problems]
    return rows
