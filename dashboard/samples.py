"""Sample images for the landing section: a few held-out images of the store's models, one click to attribute.

Held-out test images are never trained on, so attributing them shows what the tool does on images
it has not seen; each sample is labelled with its true source, so the verdict can be checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.storage.store import Store


@dataclass(frozen=True)
class Sample:
    path: str
    truth: str  # the model that made it, or "real photo"


def sample_images(store: Store, limit: int = 4) -> list[Sample]:
    """One held-out generated image from each of up to ``limit - 1`` models in distinct families
    (the zoo's ``family`` metadata, when present), plus one held-out real photo."""
    out: list[Sample] = []
    real: Sample | None = None
    families: set[str] = set()
    for _, fp, _ in store.scan():
        if fp is None or len(out) >= limit - 1:
            continue
        files = fp.test_files or {}
        family = str((fp.metadata or {}).get("family") or fp.name)
        fake = sorted(p for p in files.get("fake") or [] if Path(p).is_file())
        if fake and family not in families:
            families.add(family)
            out.append(Sample(fake[0], fp.name))
        reals = sorted(p for p in files.get("real") or [] if Path(p).is_file())
        if real is None and reals:
            real = Sample(reals[0], "real photo")
    return out + ([real] if real else [])
