"""Bounded reading of the metadata an image file carries: PNG text chunks, XMP, EXIF, C2PA boxes.

Metadata is attacker-controlled, so this module walks the container itself (PNG chunks, JPEG
segments) with hard size limits instead of handing whole files to a parser: an oversized chunk is
skipped and reported, compressed text is inflated at most ``MAX_TEXT`` bytes, XMP with a DTD or
entities is refused (XMP never needs them; entity expansion is the classic XML bomb), and every
failure becomes a line in ``problems``. Nothing here raises on bad input.

C2PA manifests travel in JUMBF boxes (ISO 19566-5): in JPEG inside APP11 segments, in PNG in a
``caBX`` chunk, elsewhere as a ``jumb`` box whose description is labelled ``c2pa``. Finding the box
(bounded, in the bytes) says "a manifest is present"; the manifest is then validated by
:mod:`engine.provenance.content_credentials`.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from dataclasses import dataclass, field
from xml.etree import ElementTree

from engine.provenance.content_credentials import read_credentials

MAX_TEXT = 256 * 1024  # one text chunk / XMP packet / EXIF block kept at most this many bytes
MAX_CHUNKS = 4096  # a PNG or JPEG with more non-pixel chunks than this is reported, not walked further
MAX_C2PA_SCAN = 64 * 1024 * 1024  # bytes searched for JUMBF boxes
XMP_KEYWORD = "XML:com.adobe.xmp"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class FileMetadata:
    """What the container says about itself; ``problems`` lists what was malformed or too large."""

    container: str = "unknown"
    text: dict[str, str] = field(default_factory=dict)  # PNG tEXt/zTXt/iTXt and JPEG COM, by keyword
    xmp: str | None = None
    xmp_fields: dict[str, str] = field(default_factory=dict)  # selected XMP properties (local names)
    exif: dict[str, str] = field(default_factory=dict)  # Software, Make, Model, ... (named tags)
    c2pa: dict | None = None  # None: no manifest box; else a cheap summary
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "container": self.container,
            "text": self.text,
            "xmp_fields": self.xmp_fields,
            "xmp_bytes": len(self.xmp or ""),
            "exif": self.exif,
            "c2pa": self.c2pa,
            "problems": self.problems,
        }


def _clip(text: str, limit: int = 4000) -> str:
    text = text.replace("\x00", "")
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _inflate(data: bytes, what: str, problems: list[str]) -> bytes | None:
    """zlib-decompress at most MAX_TEXT bytes; a bomb or corrupt stream is a problem, not a crash."""
    try:
        engine = zlib.decompressobj()
        out = engine.decompress(data, MAX_TEXT)
        if engine.unconsumed_tail:
            problems.append(f"{what}: compressed text inflates past {MAX_TEXT} bytes (kept the first {MAX_TEXT})")
        return out
    except zlib.error as exc:
        problems.append(f"{what}: corrupt compressed text ({exc})")
        return None


# ---------------------------------------------------------------- PNG
def _png_text(ctype: bytes, body: bytes, meta: FileMetadata) -> None:
    """Decode one tEXt / zTXt / iTXt chunk body into meta.text (or meta.xmp)."""
    key, sep, rest = body.partition(b"\x00")
    if not sep or not key:
        meta.problems.append(f"{ctype.decode()} chunk without a keyword")
        return
    keyword = key[:79].decode("latin-1")
    what = f"{ctype.decode()} '{keyword}'"
    if ctype == b"tEXt":
        value = rest.decode("latin-1")
    elif ctype == b"zTXt":
        raw = _inflate(rest[1:], what, meta.problems)
        if raw is None:
            return
        value = raw.decode("latin-1")
    else:  # iTXt: compressed flag, method, language\0, translated keyword\0, text
        if len(rest) < 2:
            meta.problems.append(f"{what}: truncated")
            return
        flag, tail = rest[0], rest[2:]
        parts = tail.split(b"\x00", 2)
        if len(parts) < 3:
            meta.problems.append(f"{what}: malformed (missing language or translated keyword)")
            return
        raw = _inflate(parts[2], what, meta.problems) if flag == 1 else parts[2]
        if raw is None:
            return
        value = raw.decode("utf-8", "replace")
    if keyword == XMP_KEYWORD:
        meta.xmp = value
    else:
        meta.text[keyword] = _clip(value)


def _walk_png(data: bytes, meta: FileMetadata) -> None:
    pos, count = len(PNG_SIGNATURE), 0
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        body_at, end = pos + 8, pos + 12 + length
        count += ctype != b"IDAT"  # big images legitimately hold thousands of pixel-data chunks
        if count > MAX_CHUNKS:
            meta.problems.append(f"more than {MAX_CHUNKS} PNG chunks: stopped reading metadata")
            return
        if end > len(data):
            meta.problems.append(f"PNG chunk {ctype!r} claims {length} bytes past the end of the file (truncated)")
            return
        if ctype in (b"tEXt", b"zTXt", b"iTXt"):
            if length > MAX_TEXT:
                meta.problems.append(
                    f"{ctype.decode()} chunk of {length} bytes exceeds the {MAX_TEXT}-byte limit: skipped"
                )
            else:
                _png_text(ctype, data[body_at : body_at + length], meta)
        elif ctype == b"eXIf":
            _exif(data[body_at : body_at + min(length, MAX_TEXT)], meta)
        elif ctype == b"IEND":
            return
        pos = end


# ---------------------------------------------------------------- JPEG
def _walk_jpeg(data: bytes, meta: FileMetadata) -> None:
    pos, count = 2, 0
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            meta.problems.append(f"JPEG marker expected at byte {pos}: stopped reading metadata")
            return
        marker = data[pos + 1]
        if marker in (0xD9, 0xDA):  # end of image / start of scan: no metadata after this
            return
        if marker == 0xFF or 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 1 if marker == 0xFF else 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        body = data[pos + 4 : pos + 2 + length]
        count += 1
        if count > MAX_CHUNKS:
            meta.problems.append(f"more than {MAX_CHUNKS} JPEG segments: stopped reading metadata")
            return
        if marker == 0xE1 and body.startswith(b"Exif\x00\x00"):
            _exif(body, meta)
        elif marker == 0xE1 and body.startswith(b"http://ns.adobe.com/xap/1.0/\x00"):
            meta.xmp = body.split(b"\x00", 1)[1].decode("utf-8", "replace")
        elif marker == 0xFE:
            meta.text["Comment"] = _clip(body.decode("latin-1"))
        pos += 2 + length


# ---------------------------------------------------------------- EXIF, XMP, C2PA
EXIF_TAGS = {
    0x0131: "Software",
    0x010F: "Make",
    0x0110: "Model",
    0x013B: "Artist",
    0x010E: "ImageDescription",
    0x8298: "Copyright",
    0x0132: "DateTime",
}
EXIF_USER_COMMENT = 0x9286  # in the Exif IFD; some generators write their parameters here


def _exif(raw: bytes, meta: FileMetadata) -> None:
    """Named EXIF tags from a raw EXIF block (Pillow parses it; the block is already size-bounded)."""
    from PIL import Image

    try:
        exif = Image.Exif()
        exif.load(raw[:MAX_TEXT])
        for tag, name in EXIF_TAGS.items():
            if tag in exif:
                meta.exif[name] = _clip(_as_text(exif[tag]), 500)
        comment = exif.get_ifd(0x8769).get(EXIF_USER_COMMENT)
        if comment:
            meta.exif["UserComment"] = _clip(
                _as_text(comment).removeprefix("UNICODE").removeprefix("ASCII").strip("\x00 "), 4000
            )
    except Exception as exc:  # parser boundary: malformed EXIF is a problem line
        meta.problems.append(f"malformed EXIF ({type(exc).__name__})")


def _as_text(value) -> str:
    if isinstance(value, bytes):
        if value[:8] == b"UNICODE\x00":
            return value[8:].decode("utf-16-be", "replace")
        return value.decode("utf-8", "replace")
    return str(value)


XMP_PROPERTIES = (
    "DigitalSourceType",
    "CreatorTool",
    "Software",
    "softwareAgent",
    "Credit",
    "Description",
    "parameters",
)


def parse_xmp(xmp: str, meta: FileMetadata) -> None:
    """Selected XMP properties (element or attribute local names); malformed packets are a problem."""
    if len(xmp) > MAX_TEXT:
        meta.problems.append(f"XMP packet of {len(xmp)} bytes exceeds the {MAX_TEXT}-byte limit: skipped")
        return
    if re.search(r"<!(DOCTYPE|ENTITY)", xmp, re.IGNORECASE):
        meta.problems.append("XMP packet declares a DTD or entities (refused: possible XML bomb)")
        return
    body = xmp[xmp.find("<x:xmpmeta") :] if "<x:xmpmeta" in xmp else xmp
    end = body.rfind("</x:xmpmeta>")
    body = body[: end + len("</x:xmpmeta>")] if end != -1 else body
    try:
        root = ElementTree.fromstring(body.strip())
    except ElementTree.ParseError as exc:
        meta.problems.append(f"malformed XMP packet ({exc})")
        return
    for element in root.iter():
        local = element.tag.rsplit("}", 1)[-1]
        if local in XMP_PROPERTIES and (element.text or "").strip():
            meta.xmp_fields[local] = _clip(element.text.strip(), 1000)
        for attr, value in element.attrib.items():
            name = attr.rsplit("}", 1)[-1]
            if name in XMP_PROPERTIES:
                meta.xmp_fields[name] = _clip(value, 1000)


def c2pa_present(data: bytes) -> bool:
    """True when the file carries a JUMBF box labelled c2pa (JPEG APP11, PNG caBX, or a bare box)."""
    data = data[:MAX_C2PA_SCAN]
    if data.startswith(PNG_SIGNATURE) and b"caBX" in data:
        return True
    at = data.find(b"jumb")
    while at != -1:
        if b"c2pa" in data[at : at + 256]:
            return True
        at = data.find(b"jumb", at + 4)
    return False


def _cbor_text_after(data: bytes, key: bytes) -> str | None:
    """The CBOR text string that follows the CBOR text key ``key`` (cheap, no CBOR parser)."""
    at = data.find(key)
    if at == -1 or at + len(key) >= len(data):
        return None
    head, pos = data[at + len(key)], at + len(key) + 1
    if 0x60 <= head <= 0x77:
        size = head - 0x60
    elif head == 0x78 and pos < len(data):
        size, pos = data[pos], pos + 1
    elif head == 0x79 and pos + 1 < len(data):
        size, pos = struct.unpack(">H", data[pos : pos + 2])[0], pos + 2
    else:
        return None
    return data[pos : pos + min(size, 500)].decode("utf-8", "replace")


def c2pa_summary(data: bytes) -> dict | None:
    """None without a manifest box; else the manifest validated (``content_credentials``): state
    valid / invalid / unchecked, and the generator its claim names."""
    if not c2pa_present(data):
        return None
    credentials = read_credentials(data, _cbor_text_after(data[:MAX_C2PA_SCAN], b"claim_generator"))
    return credentials.to_dict() if credentials is not None else None


def read_file_metadata(data: bytes) -> FileMetadata:
    """Walk the container of ``data`` (PNG and JPEG natively, other formats through Pillow)."""
    meta = FileMetadata()
    try:
        if data.startswith(PNG_SIGNATURE):
            meta.container = "png"
            _walk_png(data, meta)
        elif data.startswith(b"\xff\xd8"):
            meta.container = "jpeg"
            _walk_jpeg(data, meta)
        else:
            _via_pillow(data, meta)
        if meta.xmp is not None:
            parse_xmp(meta.xmp, meta)
        meta.c2pa = c2pa_summary(data)
    except Exception as exc:  # last guard: metadata never breaks a reading
        meta.problems.append(f"metadata reading stopped ({type(exc).__name__}: {exc})")
    return meta


def _via_pillow(data: bytes, meta: FileMetadata) -> None:
    """WebP, TIFF, GIF...: Pillow's header parse gives EXIF and XMP; it does not decode pixels."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            meta.container = (img.format or "unknown").lower()
            raw_exif = img.info.get("exif")
            if isinstance(raw_exif, bytes):
                _exif(raw_exif, meta)
            else:
                for tag, name in EXIF_TAGS.items():
                    value = img.getexif().get(tag)
                    if value is not None:
                        meta.exif[name] = _clip(_as_text(value), 500)
            xmp = img.info.get("xmp") or img.info.get("XML:com.adobe.xmp")
            if isinstance(xmp, bytes):
                xmp = xmp[: MAX_TEXT + 1].decode("utf-8", "replace")
            if isinstance(xmp, str):
                meta.xmp = xmp
            for key in ("comment", "Comment", "Software"):
                value = img.info.get(key)
                if isinstance(value, (str, bytes)):
                    meta.text[key] = _clip(_as_text(value))
    except Exception as exc:
        meta.problems.append(f"cannot read container metadata ({type(exc).__name__})")
