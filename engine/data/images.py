"""Reading images into the one form the method needs: 8-bit RGB, centre-cropped.

Conversion rule (applied in this order, and recorded in ``LoadedImage.notes``):

1. EXIF orientation is applied, so the pixels are those a viewer shows.
2. Multi-frame files (animated GIF/WebP/PNG, multi-page TIFF): the first frame is used.
3. 16-bit and 32-bit integer images are scaled to 8 bits (``round(v / 257)``, full-range 16-bit);
   float images are clipped to [0, 255].
4. Palette images become RGB (RGBA if they declare transparency); gray images are repeated on the
   three channels; CMYK, YCbCr, LAB and HSV go through Pillow's colour conversion.
5. Alpha is dropped, never composited: compositing would rewrite the generator's own pixel values,
   and those carry the fingerprint.
6. The image is centre-cropped to ``crop x crop``. An image smaller than the crop is an error unless
   the caller asks for padding (reflection padding; the note says so).

Every failure raises :class:`~engine.errors.ImageLoadError` naming the file and the problem.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.data.jpeg import quality_from_tables
from engine.errors import ImageLoadError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
DEFAULT_MAX_PIXELS = int(os.environ.get("DIF_MAX_PIXELS", 64_000_000))
DEFAULT_MAX_BYTES = int(os.environ.get("DIF_MAX_FILE_BYTES", 200 * 1024 * 1024))

# Our own pixel limit is checked before decoding; Pillow's global guard stays as a backstop.
Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, DEFAULT_MAX_PIXELS)


@dataclass(frozen=True)
class LoadedImage:
    """A decoded, converted and cropped image together with where it came from."""

    pixels: np.ndarray  # H x W x 3, uint8
    source: str
    sha256: str  # of the file's bytes, so the same content is recognised under any name
    original_size: tuple[int, int]  # (width, height) after EXIF orientation, before cropping
    original_mode: str
    format: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    jpeg_quality: float | None = None  # estimated from the file's tables (or the re-save that made this copy)
    jpeg_grid: tuple[int, int] = (0, 0)  # where the file's 8 x 8 JPEG blocks start in ``pixels`` (rows, columns)

    @property
    def is_jpeg(self) -> bool:
        """A JPEG file, or a copy re-saved as JPEG: what a fingerprint's JPEG reading is for."""
        return self.format == "JPEG" or self.jpeg_quality is not None


def content_hash(data: bytes) -> str:
    """SHA-256 hex digest; the identity of an input everywhere in the store."""
    return hashlib.sha256(data).hexdigest()


def derived(im: "LoadedImage", pixels: np.ndarray, tag: bytes, note: str, **changes) -> "LoadedImage":
    """A changed copy of ``im``: its hash covers the new pixels and ``tag`` (so residual caches stay
    correct and two derivations of one image never collide), its notes say what was done."""
    return replace(im, pixels=pixels, sha256=content_hash(pixels.tobytes() + tag), notes=im.notes + (note,), **changes)


def read_source_bytes(source: str | os.PathLike | bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[bytes, str]:
    """Return the raw bytes of a file path (or the bytes themselves) and a display name."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = "<bytes>"
    else:
        path = Path(source)
        name = str(path)
        if not path.exists():
            raise ImageLoadError(name, "file not found")
        if path.is_dir():
            raise ImageLoadError(name, "is a folder, not an image file")
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageLoadError(name, f"file is {size} bytes, over the {max_bytes}-byte limit")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImageLoadError(name, f"cannot read file ({exc.strerror or exc})") from None
    if len(data) == 0:
        raise ImageLoadError(name, "empty file (0 bytes)")
    if len(data) > max_bytes:
        raise ImageLoadError(name, f"data is {len(data)} bytes, over the {max_bytes}-byte limit")
    return data, name


def _to_rgb_array(img: Image.Image, notes: list[str]) -> np.ndarray:
    """Apply rules 3-5 of the module docstring."""
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        if mode == "I" and arr.size and arr.max() <= 255 and arr.min() >= 0:
            notes.append("32-bit integer image with 8-bit values used as is")
        else:
            arr = np.clip(np.round(arr / 257.0), 0, 255)
            notes.append("16-bit values scaled to 8 bits (v/257)")
        gray = arr.astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "F":
        gray = np.clip(np.asarray(img, dtype=np.float64), 0, 255).round().astype(np.uint8)
        notes.append("float image clipped to [0, 255]")
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else "RGB")
        notes.append("palette converted to RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "RGBa", "La"):
        notes.append("alpha channel dropped (not composited)")
        img = img.convert("RGB") if mode in ("RGBA", "RGBa") else img.convert("L")
        mode = img.mode
    if mode in ("L", "1"):
        gray = np.asarray(img.convert("L"), dtype=np.uint8)
        notes.append("gray repeated on 3 channels")
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode != "RGB":
        notes.append(f"{mode} converted to RGB")
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8)


def decode_image(data: bytes, name: str = "<bytes>", max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, dict]:
    """Decode bytes to an H x W x 3 uint8 array (rules 1-5). Raises ImageLoadError on any failure."""
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width <= 0 or height <= 0:
                raise ImageLoadError(name, f"invalid dimensions {width}x{height}")
            if width * height > max_pixels:
                raise ImageLoadError(
                    name,
                    f"{width}x{height} = {width * height} pixels exceeds the limit of {max_pixels} (decompression "
                    "bomb guard)",
                )
            fmt = img.format or "unknown"
            quality = quality_from_tables(getattr(img, "quantization", None)) if fmt == "JPEG" else None
            if getattr(img, "n_frames", 1) > 1:
                notes.append(f"first of {img.n_frames} frames used")
                img.seek(0)
            img.load()
            original_mode = img.mode
            orientation = img.getexif().get(0x0112, 1)
            if orientation not in (None, 1):
                img = ImageOps.exif_transpose(img)
                notes.append(f"EXIF orientation {orientation} applied")
            arr = _to_rgb_array(img, notes)
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        raise ImageLoadError(name, "not a recognised image format") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(name, f"decompression bomb guard: {exc}") from None
    except MemoryError:
        raise ImageLoadError(name, "image too large to decode in memory") from None
    except Exception as exc:  # decoder boundary: any decoder failure is a bad file, not a crash
        text = str(exc).splitlines()[0] if str(exc) else ""
        raise ImageLoadError(name, f"corrupt or truncated image data ({type(exc).__name__}: {text})") from None
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageLoadError(name, f"unexpected decoded shape {arr.shape}")
    info = {
        "format": fmt,
        "mode": original_mode,
        "size": (arr.shape[1], arr.shape[0]),
        "notes": notes,
        "jpeg_quality": quality,
    }
    return np.ascontiguousarray(arr), info


def center_crop(
    pixels: np.ndarray, crop: int, pad: bool = False, name: str = "<image>", notes: list[str] | None = None
) -> np.ndarray:
    """Centre-crop H x W x C to crop x crop; smaller images are an error unless ``pad`` (reflect)."""
    height, width = pixels.shape[:2]
    if height < crop or width < crop:
        if not pad:
            raise ImageLoadError(
                name, f"image is {width}x{height}, smaller than the {crop}x{crop} crop (allow padding to use it)"
            )
        pad_h, pad_w = max(0, crop - height), max(0, crop - width)
        widths = ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0))
        mode = "reflect" if height > 1 and width > 1 and pad_h < height and pad_w < width else "edge"
        pixels = np.pad(pixels, widths, mode=mode)
        if notes is not None:
            notes.append(f"padded from {width}x{height} to {crop}x{crop} ({mode})")
        height, width = pixels.shape[:2]
    top, left = (height - crop) // 2, (width - crop) // 2
    return np.ascontiguousarray(pixels[top : top + crop, left : left + crop])


def load_image(
    source: str | os.PathLike | bytes,
    crop: int | None = 256,
    pad: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    name: str | None = None,
) -> LoadedImage:
    """Read, convert and centre-crop one image from a path or from bytes."""
    try:
        data, display = read_source_bytes(source)
    except ImageLoadError as exc:  # bytes have no name of their own: report the caller's
        if name and isinstance(source, (bytes, bytearray, memoryview)):
            raise ImageLoadError(name, exc.problem) from None
        raise
    display = name or display
    arr, info = decode_image(data, display, max_pixels)
    notes = list(info["notes"])
    grid = (0, 0)
    if crop is not None:
        top, left = (arr.shape[0] - crop) // 2, (arr.shape[1] - crop) // 2
        grid = (-top % 8, -left % 8) if min(top, left) >= 0 else grid  # the file's blocks, seen from the crop
        arr = center_crop(arr, crop, pad=pad, name=display, notes=notes)
    return LoadedImage(
        pixels=arr,
        source=display,
        sha256=content_hash(data),
        original_size=info["size"],
        original_mode=info["mode"],
        format=info["format"],
        jpeg_quality=info["jpeg_quality"],
        jpeg_grid=grid,
        notes=tuple(notes),
    )


def list_images(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """All image files under ``folder`` by extension, sorted by relative path (deterministic)."""
    root = Path(folder)
    if not root.exists():
        raise ImageLoadError(str(root), "folder not found")
    if root.is_file():
        return [root]
    pattern = root.rglob("*") if recursive else root.glob("*")
    files = [
        p
        for p in pattern
        if p.is_file()
        and p.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    if not files:
        raise ImageLoadError(str(root), f"no images found (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def expand_sources(sources: Sequence[str | os.PathLike]) -> list[Path]:
    """Expand a mix of files and folders into image files, in the given order."""
    out: list[Path] = []
    for src in sources:
        path = Path(src)
        out.extend(list_images(path) if path.is_dir() else [path])
    return out


def load_images(
    sources: Iterable[str | os.PathLike | bytes],
    crop: int | None = 256,
    pad: bool = False,
    strict: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[list[LoadedImage], list[ImageLoadError]]:
    """Load many images; bad ones are collected and returned (or raised at once when ``strict``)."""
    good: list[LoadedImage] = []
    bad: list[ImageLoadError] = []
    for src in sources:
        try:
            good.append(load_image(src, crop=crop, pad=pad, max_pixels=max_pixels))
        except ImageLoadError as exc:
            if strict:
                raise
            bad.append(exc)
    return good, bad


def to_tensor_batch(images: Sequence[LoadedImage]):
    """Stack images into a float32 N x 3 x H x W torch tensor in [0, 1]."""
    import torch

    arr = np.stack([im.pixels for im in images]).astype(np.float32) / 255.0
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()
