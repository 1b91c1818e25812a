"""Attribution of suspect images: which known generator (if any) made each one?

Every stored fingerprint scores the image (signed score: + means "closer to that model's generated
mean than to its real mean"); the models whose detector claims the image are ranked by score and the
best one is the verdict. When no detector claims it the answer is "unknown": the open set, since a
new generator is far likelier than one of the few we know. A detector whose own held-out balanced
accuracy is below ``MIN_DETECTOR_ACCURACY`` is still ranked but cannot decide the verdict (measured:
a chance-level detector claimed half of the real photos). A related model (a fine-tune) often
claims the image too: that is lineage, not an error, and the ranking shows it.

Warnings name the conditions where the fingerprint is known to weaken (``engine.data.conditions``):
an image smaller than the crop, an upscaled image, heavy JPEG compression.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from engine.data.conditions import image_warnings
from engine.data.images import LoadedImage
from engine.data.tiles import DEFAULT_MAX_TILES
from engine.errors import ConfigError
from engine.storage.fingerprint import Fingerprint
from engine.storage.store import Store

UNKNOWN = "unknown"
MIN_DETECTOR_ACCURACY = 0.6  # a detector at chance on its own held-out set would claim half of everything


@dataclass
class Attribution:
    """The answer for one image: verdict, full ranking, and why the answer may be weak."""

    source: str
    verdict: str  # a model name or "unknown"
    ranking: list[dict] = field(default_factory=list)  # per model: model, score, rho, claims, reliable
    warnings: list[str] = field(default_factory=list)
    sha256: str = ""
    tiles: list[list[int]] = field(
        default_factory=list
    )  # analysed boxes: [top, left, height, width] in the image's pixels

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "sha256": self.sha256,
            "verdict": self.verdict,
            "ranking": self.ranking,
            "warnings": self.warnings,
            "tiles": self.tiles,
        }


def attribute(
    images: list[LoadedImage],
    fingerprints: list[Fingerprint],
    store: Store | None = None,
    device: torch.device | None = None,
    data: Sequence[bytes | None] | None = None,
    max_tiles: int = DEFAULT_MAX_TILES,
    offsets: bool = True,
) -> list[Attribution]:
    """Rank ``fingerprints`` for each image; verdict = best-scoring model that claims it, else "unknown".

    ``data`` optionally gives each image's raw file bytes (for the JPEG check when the source is not a path).
    ``offsets`` (default on): an image whose pattern sits off the grid is also read with each model's offset reading.
    """
    from engine.api import jpeg_rates_for, jpeg_rates_phrase, reading_kind, reads_as_upscaled, tiled_rho, with_readings
    from engine.method.calibration import from_card
    from engine.method.detect import scores_and_decisions

    if not fingerprints:
        raise ConfigError("no models to attribute to (train one, or run 'dif demo build')")
    if not images:
        return []
    crop = max(fp.crop for fp in fingerprints)
    pad = any(min(im.pixels.shape[:2]) < crop for im in images)
    readings, choose = with_readings(fingerprints, images, offsets)  # a JPEG the JPEG way; off-grid: phase too
    rho, boxes, _ = tiled_rho(readings, images, store, device, pad=pad, max_tiles=max_tiles)
    columns = choose(rho)
    per_reading = [scores_and_decisions(fp, rho[:, k]) for k, fp in enumerate(readings)]
    accuracy = [detector_accuracy(fp) for fp in fingerprints]
    reliable = [a is None or a >= MIN_DETECTOR_ACCURACY for a in accuracy]
    calibrations = [from_card(fp.calibration) for fp in readings]
    names = [fp.name for fp in fingerprints]
    out = []
    for i, image in enumerate(images):
        ranking = []
        for j, fp in enumerate(fingerprints):
            k = columns[i][j]  # the reading of model j that reads image i
            scores, claims = per_reading[k]
            entry = {
                "model": fp.name,
                "score": float(scores[i]),
                "rho": float(rho[i, k]),
                "claims": bool(claims[i]),
                "reliable": reliable[j],
            }
            if k != j:
                entry["reading"] = reading_kind(fp, readings[k], image)
            if calibrations[k] is not None:  # calibrated P(correct decision) and the 3-way verdict
                entry["confidence"] = float(calibrations[k].confidence(rho[i, k]))
                entry["calibrated"] = str(calibrations[k].verdict(rho[i, k]))
            ranking.append(entry)
        ranking.sort(key=lambda r: (-(r["claims"] and r["reliable"]), -r["claims"], -r["score"], r["model"]))
        top = ranking[0]
        verdict = top["model"] if top["claims"] and top["reliable"] else UNKNOWN
        raw = data[i] if data is not None and i < len(data) else None
        warnings = image_warnings(image, crop, raw)
        warnings += [
            f"{fp.name} claims it, but its detector is near chance on its own held-out images (balanced accuracy "
            f"{accuracy[j]:.3f} < {MIN_DETECTOR_ACCURACY}): ignored for the verdict"
            for j, fp in enumerate(fingerprints)
            if not reliable[j] and per_reading[columns[i][j]][1][i]
        ]
        winner = fingerprints[names.index(top["model"])] if verdict != UNKNOWN else None
        rates = jpeg_rates_for(winner, image.jpeg_quality) if winner is not None and image.is_jpeg else None
        if rates:  # the verdict's JPEG reading, as its card measured it at this quality
            warnings.append(
                f"{verdict}, read against its held-out images re-saved at JPEG quality {rates['quality']}, "
                + jpeg_rates_phrase(rates)
            )
        if winner is not None:
            j = names.index(verdict)
            if reads_as_upscaled(winner, readings[columns[i][j]], image):
                warnings.append(f"{verdict} decided with its upscaled reading, calibrated among half-size copies")
        out.append(Attribution(image.source, verdict, ranking, warnings, image.sha256, [list(b) for b in boxes[i]]))
    return out


def detector_accuracy(fp: Fingerprint) -> float | None:
    """The detector's balanced accuracy on its held-out set (else on its training set), if recorded."""
    for metrics in (fp.test_metrics, fp.train_metrics):
        value = (metrics or {}).get("accuracy")
        if isinstance(value, (int, float)) and np.isfinite(value):
            return float(value)
    return None
