"""C2PA content credentials: the manifest read and validated by ``c2pa-python``, the reference implementation.

Validation checks the claim signature and the hard binding (the hash of the image bytes the claim
covers), so a re-encoded or edited copy of a signed file reports "invalid". "valid" means the
signature and binding hold, not that the signer is trusted: any key can sign a manifest.
``c2pa-python`` is optional (``pip install 'dif-lineage[provenance]'``); without it a manifest box
is reported "unchecked", with the claim generator read from the bytes.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field

UNTRUSTED = "signingCredential.untrusted"  # no trust list configured: every signer is unknown
AI_SOURCE_TYPE = "trainedAlgorithmicMedia"  # IPTC digital source type of generated media
MIME_BY_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)


@dataclass
class Credentials:
    state: str  # valid | invalid | unchecked (a manifest box, no validator installed)
    claim_generator: str | None = None
    declares_ai_generated: bool = False
    failures: list[str] = field(default_factory=list)  # validation codes, e.g. assertion.dataHash.mismatch
    reason: str = ""
    trusted: bool = False  # the signer chains to a trust list the validator was given (none is configured)

    def to_dict(self) -> dict:
        return {"present": True, "verified": self.state == "valid", **asdict(self)}


def _mime(data: bytes) -> str | None:
    for magic, mime in MIME_BY_MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        return "image/avif" if b"avif" in data[8:32] else "image/heic"
    return None


def _generator(manifest: dict) -> str | None:
    """``claim_generator`` (claims v1) or the first ``claim_generator_info`` entry (v2), as "name/version"."""
    if manifest.get("claim_generator"):
        return str(manifest["claim_generator"])
    info = manifest.get("claim_generator_info") or []
    if info and isinstance(info[0], dict) and info[0].get("name"):
        return "/".join(str(info[0][k]) for k in ("name", "version") if info[0].get(k))
    return None


def read_credentials(data: bytes, fallback_generator: str | None = None) -> Credentials | None:
    """None when the file has no manifest; else its validation state and claim generator.

    ``fallback_generator`` (read from the bytes by the caller) is reported when no validator is
    installed or the manifest cannot be parsed at all.
    """
    try:
        import c2pa
    except ImportError:
        return Credentials(
            "unchecked",
            fallback_generator,
            AI_SOURCE_TYPE.encode() in data,
            reason="c2pa-python not installed: pip install 'dif-lineage[provenance]'",
        )
    mime = _mime(data)
    if mime is None:
        return Credentials("unchecked", fallback_generator, reason="container not supported by the C2PA validator")
    try:
        with c2pa.Reader(mime, io.BytesIO(data)) as reader:
            store = json.loads(reader.json())
            state = reader.get_validation_state() or ""
            results = reader.get_validation_results() or {}
    except c2pa.C2paError as exc:
        if "ManifestNotFound" in type(exc).__name__ or "ManifestNotFound" in str(exc):
            return None
        line = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return Credentials(
            "invalid", fallback_generator, AI_SOURCE_TYPE.encode() in data, reason=f"unreadable manifest ({line})"
        )
    active = store.get("manifests", {}).get(store.get("active_manifest") or "", {})
    codes = [f.get("code", "") for f in (results.get("activeManifest") or {}).get("failure", [])]
    failures = [c for c in codes if c != UNTRUSTED]  # an unknown signer is reported as `trusted`, not a failure
    valid = state.lower() in ("valid", "trusted") and not failures
    return Credentials(
        "valid" if valid else "invalid",
        _generator(active) or fallback_generator,
        AI_SOURCE_TYPE in json.dumps(active),
        failures,
        f"C2PA validation state {state or 'unknown'}",
        trusted=state.lower() == "trusted",
    )
