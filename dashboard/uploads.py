"""Turning browser uploads into images, in memory: no uploaded name ever becomes a path.

A zip is opened from memory and its image members decoded one by one with limits on the member
count and the total uncompressed size (a zip bomb stops at the limit, with a message). The display
name of every image is the uploaded name reduced to its last component; it is only ever a label.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Protocol

from engine.data.images import IMAGE_EXTENSIONS, LoadedImage, load_image
from engine.errors import ImageLoadError

SAMPLES_KEY = (
    "attr_samples"  # session key: (server path, true source) of the samples the Models page sends to Attribute
)
MAX_ZIP_MEMBERS = 5000
MAX_ZIP_BYTES = 1024 * 1024 * 1024


class Upload(Protocol):
    """What st.file_uploader returns (name + bytes); tests pass the same shape."""

    name: str

    def getvalue(self) -> bytes: ...


class ServerFile:
    """A file the server chose itself (a demo sample), in the shape of an upload."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = self.path.name

    def getvalue(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise ImageLoadError(self.name, f"cannot read sample ({exc.strerror or type(exc).__name__})") from None


@dataclass
class UploadResult:
    """Decoded images plus one line per file that could not be used."""

    images: list[LoadedImage] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    data: dict[str, bytes] = field(default_factory=dict)  # label -> file bytes (for the metadata panel)


def label(name: str) -> str:
    """A display label for an uploaded name: last path component, printable, bounded."""
    last = name.replace("\\", "/").rsplit("/", 1)[-1]
    clean = "".join(ch if ch.isprintable() else "?" for ch in last)
    return clean[:120] or "upload"


def _add_image(data: bytes, name: str, out: UploadResult) -> None:
    try:
        out.images.append(load_image(data, crop=None, name=name))
        out.data[name] = data
    except ImageLoadError as exc:
        out.problems.append(str(exc))


def _add_zip(data: bytes, name: str, out: UploadResult) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        out.problems.append(f"{name}: not a valid zip file")
        return
    members = [m for m in archive.infolist() if not m.is_dir() and m.filename.lower().endswith(IMAGE_EXTENSIONS)]
    members = [m for m in members if "__MACOSX" not in m.filename.split("/") and not label(m.filename).startswith(".")]
    if len(members) > MAX_ZIP_MEMBERS:
        out.problems.append(
            f"{name}: {len(members)} images, over the limit of {MAX_ZIP_MEMBERS}; the rest were ignored"
        )
        members = members[:MAX_ZIP_MEMBERS]
    if not members:
        out.problems.append(f"{name}: the zip holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    total = 0
    for member in sorted(members, key=lambda m: m.filename):
        total += member.file_size
        if total > MAX_ZIP_BYTES:
            out.problems.append(f"{name}: uncompressed size over {MAX_ZIP_BYTES} bytes; the rest was ignored")
            break
        try:
            content = archive.read(member)
        except Exception as exc:  # corrupt member: skip it, keep the others
            out.problems.append(f"{name}/{label(member.filename)}: cannot read ({type(exc).__name__})")
            continue
        _add_image(content, f"{name}/{label(member.filename)}", out)


def read_uploads(files: Iterable[Upload] | None) -> UploadResult:
    """Decode images and zips of images from uploads (uncropped: the engine crops per model)."""
    out = UploadResult()
    for upload in files or []:
        name = label(upload.name)
        try:
            data = upload.getvalue()
        except ImageLoadError as exc:
            out.problems.append(str(exc))
            continue
        if name.lower().endswith(".zip"):
            _add_zip(data, name, out)
        else:
            _add_image(data, name, out)
    return out
