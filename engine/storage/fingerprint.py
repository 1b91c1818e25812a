"""A trained fingerprint and its one-file format (safetensors tensors + a JSON card in the header).

The same bytes are what the store keeps and what ``dif export`` writes, so a teammate can load an
exported file with ``dif import``. Reading never unpickles anything: safetensors is a flat header
plus raw tensors, and every field of the card is type-checked and the tensor checksummed before use.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from engine import __version__
from engine.errors import StoreError

FORMAT = "dif-lineage-fingerprint"
FORMAT_VERSION = "1"
MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_SIDE = 4096
MAX_CALIBRATION = 1_000_000

# name -> (accepted types, required)
CARD_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "name": ((str,), True),
    "method": ((str,), True),
    "config": ((dict,), True),
    "extractor": ((str,), True),
    "extractor_id": ((str,), True),
    "crop": ((int,), True),
    "border": ((int,), True),
    "seed": ((int,), True),
    "mu_real": ((float, int), True),
    "mu_fake": ((float, int), True),
    "n_real": ((int,), True),
    "n_fake": ((int,), True),
    "train_files": ((dict,), True),
    "train_key": ((str,), True),
    "tensor_sha256": ((str,), True),
    "created": ((str,), True),
    "version": ((str,), True),
    "train_metrics": ((dict,), False),
    "test_metrics": ((dict,), False),
    "history": ((list,), False),
    "seconds": ((float, int), False),
    "metadata": ((dict,), False),
    "calibration": ((dict,), False),
    "test_files": ((dict,), False),
    "watermark": ((dict,), False),
    "reference_pool": ((dict,), False),
    "decision": ((dict,), False),
    "jpeg_reading": ((dict,), False),
    "offset_reading": ((dict,), False),
    "upscaled_reading": ((dict,), False),
    "calibration_set": ((dict,), False),
}


@dataclass
class Fingerprint:
    """A fingerprint tensor plus everything needed to use and audit it."""

    name: str
    method: str
    tensor: torch.Tensor  # 3 x s x s float32
    mu_real: float
    mu_fake: float
    config: dict[str, Any]
    extractor: str
    extractor_id: str
    crop: int
    border: int
    seed: int
    n_real: int
    n_fake: int
    train_files: dict[str, list[str]]
    train_key: str
    train_rho_real: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    train_rho_fake: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    train_metrics: dict[str, Any] = field(default_factory=dict)
    test_metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    metadata: dict[str, Any] = field(
        default_factory=dict
    )  # lineage metadata (release_date, base_model); not file metadata
    calibration: dict[str, Any] = field(default_factory=dict)
    test_files: dict[str, list[str]] = field(default_factory=dict)  # held-out image paths (for cross-detection)
    watermark: dict[str, Any] = field(
        default_factory=dict
    )  # known-watermark survey of the training set, and whether it was matched
    reference_pool: dict[str, Any] = field(default_factory=dict)  # the real pool mu_real was calibrated on
    # how a label is decided: {"rule": "closer-mean"} or {"rule": "real-fpr", "threshold": t, ...}
    decision: dict[str, Any] = field(default_factory=dict)
    # how a JPEG suspect is read: {"statistic", "applies_to", "mu_real", "mu_fake",
    # "calibration", "decision"}, calibrated on the same images under that statistic; {} = like any other
    jpeg_reading: dict[str, Any] = field(default_factory=dict)
    # how an image whose 8-pixel pattern sits off the crop's grid is also read (``phase``, same record)
    offset_reading: dict[str, Any] = field(default_factory=dict)
    # how an image that looks upscaled is read: a template fitted on half-size round trips (same record)
    upscaled_reading: dict[str, Any] = field(default_factory=dict)
    # the images mu_real / mu_fake / the band come from: never those the fingerprint was fitted to
    calibration_set: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    # a JPEG reading's weights on a JPEG's coefficient sign leans (engine/method/jpeg_coefficients.py),
    # added to its rho; kept on the card inside ``jpeg_reading``, never as a field of its own
    coefficient_weights: np.ndarray | None = field(default=None, repr=False, compare=False)
    version: str = __version__

    @property
    def correlation(self) -> str:
        return str(self.config.get("correlation", "plain"))

    @property
    def threshold(self) -> float | None:
        """The rho cut of a threshold rule, or None for the closer-mean rule."""
        value = self.decision.get("threshold")
        return (
            float(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            else None
        )

    @property
    def size(self) -> int:
        return int(self.tensor.shape[-1])

    def card(self) -> dict[str, Any]:
        """The JSON-serialisable description (everything but the tensors)."""
        return {
            "name": self.name,
            "method": self.method,
            "config": self.config,
            "extractor": self.extractor,
            "extractor_id": self.extractor_id,
            "crop": self.crop,
            "border": self.border,
            "seed": self.seed,
            "mu_real": float(self.mu_real),
            "mu_fake": float(self.mu_fake),
            "n_real": self.n_real,
            "n_fake": self.n_fake,
            "train_files": self.train_files,
            "train_key": self.train_key,
            "tensor_sha256": tensors_digest(self.tensor, self.train_rho_real, self.train_rho_fake),
            "created": self.created,
            "version": self.version,
            "train_metrics": self.train_metrics,
            "test_metrics": self.test_metrics,
            "history": self.history,
            "seconds": float(self.seconds),
            "metadata": self.metadata,
            "calibration": self.calibration,
            "test_files": self.test_files,
            "watermark": self.watermark,
            "reference_pool": self.reference_pool,
            "decision": self.decision,
            "jpeg_reading": self.jpeg_reading,
            "offset_reading": self.offset_reading,
            "upscaled_reading": self.upscaled_reading,
            "calibration_set": self.calibration_set,
        }

    def summary(self) -> dict[str, Any]:
        """The short row used by listings and lineage nodes."""
        return {
            "name": self.name,
            "method": self.method,
            "extractor": self.extractor,
            "crop": self.crop,
            "n_real": self.n_real,
            "n_fake": self.n_fake,
            "mu_real": round(float(self.mu_real), 6),
            "mu_fake": round(float(self.mu_fake), 6),
            "test_accuracy": self.test_metrics.get("accuracy"),
            "created": self.created,
        }

    def to_bytes(self) -> bytes:
        tensors = {
            "fingerprint": self.tensor.detach().float().cpu().contiguous(),
            "train_rho_real": torch.from_numpy(np.asarray(self.train_rho_real, dtype=np.float32).copy()),
            "train_rho_fake": torch.from_numpy(np.asarray(self.train_rho_fake, dtype=np.float32).copy()),
        }
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "card": json.dumps(self.card(), sort_keys=True)}
        return st_save(tensors, metadata=meta)

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<fingerprint>") -> "Fingerprint":
        return parse_fingerprint(data, source)


def tensors_digest(tensor: torch.Tensor, rho_real, rho_fake) -> str:
    """SHA-256 over the fingerprint and the calibration vectors: any flipped bit is detected."""
    h = hashlib.sha256()
    h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    for vec in (rho_real, rho_fake):
        arr = vec.numpy() if isinstance(vec, torch.Tensor) else np.asarray(vec)
        h.update(np.ascontiguousarray(arr, dtype=np.float32).tobytes())
    return h.hexdigest()


def _short(value: Any, limit: int = 60) -> str:
    """repr of a value read from a file, cut so a hostile file cannot flood the one-line error."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json(text: str | bytes) -> Any:
    """json.loads that turns every way hostile JSON fails (bad UTF-8, 5000-digit ints, deep nesting) into ValueError."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _header(data: bytes, source: str) -> dict:
    """Read the safetensors JSON header ourselves first, to refuse odd files before allocating."""
    if len(data) < 8:
        raise StoreError(f"{source}: not a fingerprint file (too short)")
    n = int.from_bytes(data[:8], "little")
    plausible = 0 < n <= 10 * 1024 * 1024 and 8 + n <= len(data) and data[8:9] == b"{"
    # a header length whose low byte is 0x80 is legitimate: only call it a pickle/zip when it is not a header
    if not plausible and (data[:1] == b"\x80" or data[:2] == b"PK"):
        raise StoreError(
            f"{source}: looks like a pickle/zip file; refusing to load it (only safetensors fingerprints are accepted)"
        )
    if not plausible:
        raise StoreError(f"{source}: not a fingerprint file (bad safetensors header length)")
    try:
        header = _json(data[8 : 8 + n])
    except ValueError:  # includes UnicodeDecodeError, JSONDecodeError, int digit limit
        raise StoreError(f"{source}: not a fingerprint file (header is not JSON)") from None
    if not isinstance(header, dict):
        raise StoreError(f"{source}: not a fingerprint file (header is not an object)")
    return header


def parse_fingerprint(data: bytes, source: str = "<fingerprint>") -> Fingerprint:
    """Validate and decode fingerprint bytes; any problem raises StoreError naming ``source``."""
    if len(data) > MAX_FILE_BYTES:
        raise StoreError(f"{source}: file is {len(data)} bytes, over the {MAX_FILE_BYTES}-byte limit")
    header = _header(data, source)
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise StoreError(f"{source}: not a {FORMAT} file (metadata is not an object)")
    if meta.get("format") != FORMAT:
        raise StoreError(f"{source}: not a {FORMAT} file (format={_short(meta.get('format'))})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise StoreError(f"{source}: unsupported format version {_short(meta.get('format_version'))}")
    _check_tensor_shapes(header, source)
    card = _parse_card(meta, source)
    tensors = _load_tensors(data, card, source)
    from engine.storage.names import validate_name

    validate_name(card["name"], source)
    return Fingerprint(
        name=card["name"],
        method=card["method"],
        tensor=tensors["fingerprint"],
        mu_real=float(card["mu_real"]),
        mu_fake=float(card["mu_fake"]),
        config=card["config"],
        extractor=card["extractor"],
        extractor_id=card["extractor_id"],
        crop=card["crop"],
        border=card["border"],
        seed=card["seed"],
        n_real=card["n_real"],
        n_fake=card["n_fake"],
        train_files=card["train_files"],
        train_key=card["train_key"],
        train_rho_real=tensors["train_rho_real"].numpy(),
        train_rho_fake=tensors["train_rho_fake"].numpy(),
        train_metrics=card.get("train_metrics", {}),
        test_metrics=card.get("test_metrics", {}),
        history=card.get("history", []),
        seconds=float(card.get("seconds", 0.0)),
        metadata=card.get("metadata", {}),
        calibration=card.get("calibration", {}),
        test_files=card.get("test_files", {}),
        watermark=card.get("watermark", {}),
        reference_pool=card.get("reference_pool", {}),
        decision=card.get("decision", {}),
        jpeg_reading=card.get("jpeg_reading", {}),
        offset_reading=card.get("offset_reading", {}),
        upscaled_reading=card.get("upscaled_reading", {}),
        calibration_set=card.get("calibration_set", {}),
        created=card["created"],
        version=card["version"],
    )


def _check_tensor_shapes(header: dict, source: str) -> None:
    """The three tensors, float32, with sane shapes, read from the header before any tensor bytes are."""
    expected = {"fingerprint", "train_rho_real", "train_rho_fake"}
    names = set(header) - {"__metadata__"}
    if names != expected:
        raise StoreError(f"{source}: tensors {_short(sorted(names))} != expected {sorted(expected)}")
    for name in expected:
        entry = header[name]
        if not isinstance(entry, dict) or entry.get("dtype") != "F32":
            raise StoreError(f"{source}: tensor {name!r} must be float32")
    shape = header["fingerprint"].get("shape")
    if not (
        isinstance(shape, list)
        and len(shape) == 3
        and shape[0] == 3
        and shape[1] == shape[2]
        and all(isinstance(s, int) and 8 <= s <= MAX_SIDE for s in shape[1:])
    ):
        raise StoreError(f"{source}: fingerprint shape {_short(shape)} is not 3 x S x S with 8 <= S <= {MAX_SIDE}")
    for name in ("train_rho_real", "train_rho_fake"):
        s = header[name].get("shape")
        if not (isinstance(s, list) and len(s) == 1 and isinstance(s[0], int) and 0 <= s[0] <= MAX_CALIBRATION):
            raise StoreError(f"{source}: tensor {name!r} has shape {_short(s)}, expected a vector")


def _parse_card(meta: dict, source: str) -> dict:
    """The JSON card: every field of CARD_FIELDS with its type, and nothing else."""
    if not isinstance(meta.get("card"), str):
        raise StoreError(f"{source}: card is missing or not text")
    try:
        card = _json(meta["card"])
    except ValueError:
        raise StoreError(f"{source}: card is not valid JSON") from None
    if not isinstance(card, dict):
        raise StoreError(f"{source}: card is not a JSON object")
    for key, (types, required) in CARD_FIELDS.items():
        if key not in card:
            if required:
                raise StoreError(f"{source}: card is missing field {key!r}")
            continue
        value = card[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise StoreError(f"{source}: card field {key!r} has type {type(value).__name__}")
    unknown = set(card) - set(CARD_FIELDS)
    if unknown:
        raise StoreError(f"{source}: card has unknown fields {_short(sorted(unknown))}")
    return card


def _load_tensors(data: bytes, card: dict, source: str) -> dict:
    """The tensors, finite, matching the card's checksum, means and geometry."""
    try:
        tensors = st_load(data)
    except Exception as exc:
        raise StoreError(f"{source}: corrupt tensor data ({type(exc).__name__})") from None
    tensor = tensors["fingerprint"]
    if not torch.isfinite(tensor).all():
        raise StoreError(f"{source}: fingerprint contains NaN or infinite values")
    if tensors_digest(tensor, tensors["train_rho_real"], tensors["train_rho_fake"]) != card["tensor_sha256"]:
        raise StoreError(f"{source}: checksum mismatch (fingerprint data was altered or corrupted)")
    for key in ("mu_real", "mu_fake"):
        if not math.isfinite(float(card[key])):
            raise StoreError(f"{source}: {key} is not finite")
    if tensor.shape[-1] != card["crop"] - 2 * card["border"]:
        raise StoreError(
            f"{source}: fingerprint side {tensor.shape[-1]} does not match crop {card['crop']} and border "
            f"{card['border']}"
        )
    return tensors
