"""Provenance signals of one image: what its watermark and metadata say about where it came from.

These are claims the file makes about itself, independent of the fingerprint: an invisible
watermark, generation parameters written by a front end, EXIF software/camera tags, a C2PA
manifest. Each :class:`Signal` says what it is evidence of and how strong that evidence is:

- ``strong``: hard to produce by accident (the exact watermark payload, a watermark recovered after
  realignment, a C2PA manifest's AI-generated declaration).
- ``moderate``: written deliberately by a tool but trivially added or removed (generation
  parameters in PNG text, XMP DigitalSourceType, a watermark agreement above its threshold).
- ``weak``: a free-text tag anyone can write (EXIF Software, Make/Model).

None of them is needed for detection, and none is verified: metadata can be stripped or forged,
so the absence of a signal says nothing. :func:`compare` states when the signals and the
fingerprint's verdict disagree.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from engine.provenance.file_metadata import FileMetadata, read_file_metadata
from engine.provenance.watermark import (
    ALIGNED_PRESENT,
    ALIGNED_STRONG,
    SD_GENERATOR,
    WatermarkReading,
    read_sd_watermark,
)

STRENGTHS = ("strong", "moderate", "weak")

# Front ends that write their generation parameters into PNG text chunks, by keyword.
TEXT_GENERATORS = {
    "parameters": "Stable Diffusion (AUTOMATIC1111-style web UI)",
    "prompt": "Stable Diffusion family (ComfyUI)",
    "workflow": "Stable Diffusion family (ComfyUI)",
    "invokeai_metadata": "Stable Diffusion family (InvokeAI)",
    "sd-metadata": "Stable Diffusion family (InvokeAI)",
    "Dream": "Stable Diffusion family (InvokeAI)",
}
# Names in software tags, claim generators and parameters -> the generator they name.
KNOWN_NAMES = (
    (
        r"stable[\s_-]?diffusion|\bsdxl\b|\bsd[\s_-]?[12](\.\d)?\b|comfyui|automatic1111|invokeai|novelai",
        "Stable Diffusion family",
    ),
    (r"dall[\s·-]?e|openai", "DALL-E (OpenAI)"),
    (r"midjourney", "Midjourney"),
    (r"firefly", "Adobe Firefly"),
    (r"imagen|gemini", "Google Imagen / Gemini"),
    (r"flux", "FLUX (Black Forest Labs)"),
)
# What a fingerprint model's name or metadata must mention to agree with a provenance generator.
GENERATOR_ALIASES = {
    "Stable Diffusion": (
        "stable diffusion",
        "stable-diffusion",
        "stablediffusion",
        "sd1",
        "sd2",
        "sd-",
        "sd_",
        "sdxl",
        "sd 1",
        "sd 2",
    ),
    "DALL-E": ("dall-e", "dalle", "dall_e"),
    "Midjourney": ("midjourney", "mj"),
    "Adobe Firefly": ("firefly",),
    "FLUX": ("flux",),
}


@dataclass(frozen=True)
class Signal:
    """One piece of provenance evidence."""

    kind: str  # watermark | generation_parameters | xmp | exif_software | exif_camera | c2pa
    value: str  # what was read, short
    evidence: str  # what it is evidence of, in words
    strength: str  # strong | moderate | weak
    generator: str | None = None  # the generator it names, when it names one
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "value": self.value,
            "evidence": self.evidence,
            "strength": self.strength,
            "generator": self.generator,
            "details": self.details,
        }


@dataclass
class Provenance:
    """Every signal read from one image, plus what could not be read."""

    source: str
    signals: list[Signal] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    watermark: WatermarkReading | None = None
    metadata: FileMetadata | None = None

    def generators(self, min_strength: str = "moderate") -> list[str]:
        """Generators named by signals at least as strong as ``min_strength``, strongest first."""
        keep = STRENGTHS[: STRENGTHS.index(min_strength) + 1]
        ranked = sorted(
            (s for s in self.signals if s.generator and s.strength in keep), key=lambda s: STRENGTHS.index(s.strength)
        )
        return list(dict.fromkeys(s.generator for s in ranked))

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "signals": [s.to_dict() for s in self.signals],
            "generators": self.generators(),
            "problems": self.problems,
            "watermark": self.watermark.to_dict() if self.watermark else None,
            "metadata": self.metadata.to_dict() if self.metadata else None,
        }


def short(text: str, limit: int = 120) -> str:
    """One line of at most ``limit`` characters (metadata values are multi-line and unbounded)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def name_generator(text: str) -> str | None:
    """The generator a free-text tag names, if it names a known one."""
    lowered = text.lower()
    return next((name for pattern, name in KNOWN_NAMES if re.search(pattern, lowered)), None)


def _watermark_signal(reading: WatermarkReading) -> Signal | None:
    if not reading.available or reading.generator is None:
        return None
    details = reading.to_dict()
    if reading.exact:
        return Signal(
            "watermark",
            f"'{reading.text}'",
            "the invisible watermark the reference Stable Diffusion scripts embed, decoded exactly",
            "strong",
            SD_GENERATOR,
            details,
        )
    agreement = reading.aligned_agreement or 0.0
    strength = "strong" if agreement >= ALIGNED_STRONG or reading.aligned_text == "StableDiffusionV1" else "moderate"
    return Signal(
        "watermark",
        f"payload agreement {agreement:.2f} after realignment (text '{reading.aligned_text}')",
        "the reference Stable Diffusion watermark on a cropped or altered image (unmarked images stay below "
        f"{ALIGNED_PRESENT}); the mark can also be added to any image",
        strength,
        SD_GENERATOR,
        details,
    )


def _text_signals(meta: FileMetadata) -> list[Signal]:
    out = []
    for key, value in meta.text.items():
        front_end = TEXT_GENERATORS.get(key)
        if front_end is None:
            named = (
                name_generator(value)
                if key.lower() in ("software", "comment", "description", "source", "generator")
                else None
            )
            if named:
                out.append(
                    Signal(
                        "generation_parameters", f"{key}: {short(value)}", f"a text chunk naming {named}", "weak", named
                    )
                )
            continue
        model = re.search(r"Model: ([^,\n]{1,100})", value) if key == "parameters" else None
        details = {"keyword": key, "model": model.group(1).strip() if model else None}
        out.append(
            Signal(
                "generation_parameters",
                f"{key}: {short(value)}",
                f"generation parameters written by {front_end} (easily added or stripped)",
                "moderate",
                front_end,
                details,
            )
        )
    return out


def _xmp_signals(meta: FileMetadata) -> list[Signal]:
    out = []
    source_type = meta.xmp_fields.get("DigitalSourceType", "")
    if "trainedAlgorithmicMedia" in source_type or "compositeWithTrainedAlgorithmicMedia" in source_type:
        out.append(
            Signal(
                "xmp",
                f"DigitalSourceType {source_type.rsplit('/', 1)[-1]}",
                "XMP declares the image made by a generative model (IPTC digital source type)",
                "moderate",
                "generative model (unspecified)",
            )
        )
    for key in ("CreatorTool", "softwareAgent", "Software"):
        value = meta.xmp_fields.get(key)
        named = name_generator(value) if value else None
        if named:
            out.append(
                Signal("xmp", f"{key}: {short(value)}", f"XMP names {named} as the creating tool", "weak", named)
            )
    return out


def _exif_signals(meta: FileMetadata) -> list[Signal]:
    out = []
    software = meta.exif.get("Software")
    if software:
        named = name_generator(software)
        evidence = (
            f"EXIF Software names {named}"
            if named
            else "EXIF Software tag (the last program that wrote the file; free text)"
        )
        out.append(Signal("exif_software", short(software, 200), evidence, "weak", named))
    camera = " ".join(v for v in (meta.exif.get("Make"), meta.exif.get("Model")) if v)
    if camera:
        out.append(
            Signal(
                "exif_camera",
                short(camera, 200),
                "EXIF names a camera (free text; generators rarely write it, anyone can)",
                "weak",
                None,
            )
        )
    comment = meta.exif.get("UserComment")
    if comment and ("Steps:" in comment or "Sampler:" in comment):
        out.append(
            Signal(
                "generation_parameters",
                f"UserComment: {short(comment)}",
                "generation parameters in EXIF UserComment (AUTOMATIC1111-style web UI JPEG output)",
                "moderate",
                TEXT_GENERATORS["parameters"],
            )
        )
    return out


def _c2pa_signal(meta: FileMetadata) -> Signal | None:
    """A validated manifest is strong (AI-declared) or moderate evidence; an invalid one only weak:
    its claims no longer describe these bytes (edited, re-encoded or forged)."""
    summary = meta.c2pa
    if not summary:
        return None
    claim = summary.get("claim_generator")
    state = summary.get("state", "unchecked")
    checked = {
        "valid": "signature and hard binding valid",
        "invalid": "does NOT validate: " + ", ".join(summary.get("failures") or [summary.get("reason", "")]),
        "unchecked": summary.get("reason") or "signature not verified",
    }[state]
    ai = summary.get("declares_ai_generated")
    strength = "weak" if state == "invalid" else "strong" if ai else "moderate"
    named = name_generator(claim or "") or ("generative model (unspecified)" if ai else None)
    what = "a C2PA manifest declaring AI-generated content" if ai else "a C2PA content-credentials manifest is attached"
    return Signal(
        "c2pa",
        f"manifest {state}, claim generator {claim or 'unread'}",
        f"{what} ({checked})",
        strength,
        named,
        summary,
    )


def read_provenance(source: str | os.PathLike | bytes, name: str | None = None, watermark: bool = True) -> Provenance:
    """Every provenance signal of one image file (path or bytes); problems are listed, never raised."""
    from engine.data.images import decode_image, read_source_bytes
    from engine.errors import ImageLoadError

    display = name or ("<bytes>" if isinstance(source, (bytes, bytearray, memoryview)) else str(source))
    result = Provenance(display)
    try:
        data, _ = read_source_bytes(source)
    except ImageLoadError as exc:
        result.problems.append(exc.problem)
        return result
    meta = read_file_metadata(data)
    result.metadata = meta
    result.problems.extend(meta.problems)
    if watermark:
        try:
            pixels, _ = decode_image(data, display)
            result.watermark = read_sd_watermark(pixels)
            if not result.watermark.available:
                result.problems.append(f"watermark not read: {result.watermark.reason}")
        except ImageLoadError as exc:
            result.problems.append(f"watermark not read: {exc.problem}")
    signals = [_watermark_signal(result.watermark) if result.watermark else None, _c2pa_signal(meta)]
    signals += _text_signals(meta) + _xmp_signals(meta) + _exif_signals(meta)
    result.signals = sorted((s for s in signals if s is not None), key=lambda s: STRENGTHS.index(s.strength))
    return result


def _family(generator: str) -> str | None:
    return next((family for family in GENERATOR_ALIASES if family.lower() in generator.lower()), None)


def _mentions(family: str, model: str, model_metadata: dict | None) -> bool:
    text = " ".join([model, *(str(v) for v in (model_metadata or {}).values())]).lower()
    return any(alias in text for alias in GENERATOR_ALIASES[family])


def compare(
    provenance: Provenance, verdict: str, model_metadata: dict | None = None, unknown: str = "unknown"
) -> list[str]:
    """Plain-language disagreements between the provenance signals and the fingerprint's verdict."""
    named = provenance.generators("moderate")
    if not named:
        camera = next((s for s in provenance.signals if s.kind == "exif_camera"), None)
        if camera and verdict != unknown:
            return [
                f"EXIF names a camera ({camera.value}) but the fingerprint attributes the image to {verdict} (EXIF is "
                "free text: weak evidence)"
            ]
        return []
    lines = []
    for generator in named:
        if verdict == unknown:
            lines.append(f"provenance says {generator}, but the fingerprint recognises no known model (unknown)")
            continue
        family = _family(generator)
        if family is not None and not _mentions(family, verdict, model_metadata):
            lines.append(
                f"provenance says {generator}, but the fingerprint names {verdict}, which its name and card do not "
                f"tie to {family}"
            )
    return lines
