"""The engine's public functions: train, store, detect, evaluate. The CLI and dashboard call these only."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch

from engine.data.augment import degraded_copies
from engine.data.conditions import image_warnings, upscale_kind
from engine.data.format_bias import format_warnings, resave_jpeg
from engine.data.images import LoadedImage, center_crop, load_images
from engine.data.perturb import JPEG_RESAVES, perturb
from engine.data.reference_pool import ReferencePool, pool_id
from engine.data.splits import share_out, split_half, take
from engine.data.tiles import DEFAULT_MAX_TILES, Box, tiles_of
from engine.device import default_device
from engine.errors import ConfigError
from engine.method.calibration import calibrate, from_card, pool_calibration
from engine.method.config import CORRELATIONS, TrainConfig
from engine.method.detect import correlate, decide, scores_and_decisions
from engine.method.dif import ProgressFn
from engine.method.jpeg_coefficients import N_COEFFICIENTS, sign_leans
from engine.method.jpeg_reader import fit_reader, periodic_features, tile_template
from engine.method.metrics import detection_metrics
from engine.method.registry import fit, get_method, leave_one_out_rho
from engine.provenance.watermark import MISSING, decoder_available
from engine.provenance.watermark_match import mark_share, survey
from engine.residuals.compute import compute_residuals
from engine.residuals.registry import get_extractor
from engine.storage.fingerprint import Fingerprint
from engine.storage.names import validate_name
from engine.storage.store import Store

ALGORITHM_VERSION = "dif-lineage-train-3"  # 3: fingerprint sign fixed (generated side positive)
ResidualProgress = Callable[[int, int], None]


# How a JPEG suspect is read. A card with calibration images reads every JPEG with its JPEG reader: the
# template and the file's coefficient sign leans (``_fit_reader``). Since it reads the sign leans it ranks
# the transfer pairs' JPEG copies at least as well as the fingerprint's periodic part at every quality
# measured, 95 to 50 (oracle 10% cut at JPEG-90: 95.2% / 88.3% against 87.3% / 81.8%; docs/RESULTS.md,
# "Robustness"), so the earlier switch to the periodic part from quality 88 up is gone. ``periodic`` (the
# fit's luma periodic part, which beat plain on JPEG copies at every quality) reads JPEGs for a card with no
# calibration images (no reader then). On uncompressed images plain stays the better reading.
JPEG_STATISTIC = "periodic"
READER_STATISTIC = "periodic-rgb"  # the readers' templates, JPEG and upscaled (engine/method/jpeg_reader.py)
# An image that looks upscaled (``looks_upscaled``) is also read with the upscaled reader: the same kind of template,
# fitted on half-size copies enlarged back, of both classes, and calibrated among them. On half-size copies of
# the transfer pairs it raised balanced accuracy from 0.735 / 0.662 to 0.838 / 0.872 as read by default
# (0.855 / 0.875 at the grid only; docs/RESULTS.md, "Robustness").
UPSCALED_CHECKS = ("scale0.5",)
OFFSET_STATISTIC = "phase"  # where the crop starts does not change it (engine/method/correlation.py)


def crop_images(images: Sequence[LoadedImage], crop: int, pad: bool = False) -> list[LoadedImage]:
    """Centre-crop already decoded images (loaded with ``crop=None``) to ``crop``."""
    out = []
    for im in images:
        if im.pixels.shape[:2] == (crop, crop):
            out.append(im)
            continue
        notes = list(im.notes)
        pixels = center_crop(im.pixels, crop, pad=pad, name=im.source, notes=notes)
        out.append(replace(im, pixels=pixels, notes=tuple(notes)))
    return out


def residuals_of(
    images: Sequence[LoadedImage],
    extractor: str,
    crop: int,
    border: int,
    store: Store | None = None,
    device: torch.device | None = None,
    pad: bool = False,
    progress: ResidualProgress | None = None,
) -> torch.Tensor:
    """Residuals of ``images`` (any size >= crop) for one geometry, through the store's cache."""
    ext = get_extractor(extractor, device or default_device())
    cropped = crop_images(images, crop, pad)
    return compute_residuals(cropped, ext, border, cache=store.residuals if store else None, progress=progress)


DECISION_FIELDS = ("decision", "target_fpr", "jpeg_target_fpr", "correlation")  # how a fingerprint is read, not it
DECISION_DEFAULTS = {"correlation": "plain", "jpeg_target_fpr": 0.0}  # what a card stored before a field existed read
AUGMENT_FIELDS = ("augment", "augment_copies")  # left out of the key when there is no augmentation: old keys stay valid
MIN_CALIBRATION = 8  # images per class below which a calibration share is carved out of the training images
CALIBRATION_SHARE = 0.25
MAX_CALIBRATION = 128  # per class: enough for the means and the band, and bounded in residual passes
Calibration = tuple[Sequence[LoadedImage], Sequence[LoadedImage]]


def train_key(
    real: Sequence[LoadedImage],
    fake: Sequence[LoadedImage],
    config: TrainConfig,
    extractor_id: str,
    calibration: Calibration | None = None,
) -> str:
    """Content hash of (training files' bytes, calibration files' bytes, config): the identity of a training run.

    The decision settings are left out: they change the cut, not the fingerprint, so a new
    ``--target-fpr`` re-uses a stored fingerprint and only moves its cut.
    """
    payload = {
        "real": sorted(im.sha256 for im in real),
        "fake": sorted(im.sha256 for im in fake),
        "config": {
            k: v for k, v in config.to_dict().items() if k not in DECISION_FIELDS and not _unused_option(config, k)
        },
        "extractor_id": extractor_id,
        "algorithm": ALGORITHM_VERSION,
    }
    if calibration is not None:
        payload["calibration"] = [
            sorted(im.sha256 for im in calibration[0]),
            sorted(im.sha256 for im in calibration[1]),
        ]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _unused_option(config: TrainConfig, field: str) -> bool:
    """Options that are off stay out of the key, so fingerprints stored before an option existed are still found."""
    return (config.augment == "none" and field in AUGMENT_FIELDS) or (field == "resave_jpeg" and not config.resave_jpeg)


def carve_calibration(
    real: Sequence[LoadedImage], fake: Sequence[LoadedImage], seed: int
) -> tuple[list, list, Calibration | None]:
    """Hold a quarter of each class (whole content groups) out of fitting, for the means and the band.

    The U-Net is optimised on its training images, so their correlations overstate how far apart
    the classes are. Returns (real to fit, generated to fit, calibration); calibration is None when
    a class has fewer than MIN_CALIBRATION images, and nothing is held out then.
    """
    if len(real) < MIN_CALIBRATION or len(fake) < MIN_CALIBRATION:
        return list(real), list(fake), None
    (cal_real, fit_real), (cal_fake, fit_fake) = (
        share_out(images, seed + 17, CALIBRATION_SHARE, 2, key=lambda im: im.source) for images in (real, fake)
    )
    return fit_real, fit_fake, (cal_real, cal_fake)


def train_fingerprint(
    name: str,
    real: Sequence[LoadedImage],
    fake: Sequence[LoadedImage],
    config: TrainConfig = TrainConfig(),
    store: Store | None = None,
    device: torch.device | None = None,
    progress: ProgressFn | None = None,
    residual_progress: ResidualProgress | None = None,
    metadata: dict | None = None,
    reuse: bool = True,
    calibration: Calibration | None = None,
    reference_real: Sequence[LoadedImage] = (),
) -> tuple[Fingerprint, bool]:
    """Train (or fetch from the store) the fingerprint of ``fake`` against ``real``.

    mu_real, mu_fake and the calibrated band come from ``calibration`` (real, generated) images the
    fingerprint is not fitted to. Without them, a DIF fit holds a quarter of each class out; a mean
    fingerprint (Marra18, Joslin20) with no calibration images scores each training image against
    the mean of the others (leave-one-out). Returns (fingerprint, cache_hit); the fingerprint is
    saved under ``name`` when a store is given. ``reference_real`` (the reference pool's photos) join
    the real side of the JPEG reader's fit.
    """
    validate_name(name)
    if not real or not fake:
        raise ConfigError("training needs at least one real and one generated image")
    device = device or default_device()
    ext = get_extractor(config.extractor, device)
    if calibration is None and get_method(config.method).learned:
        real, fake, calibration = carve_calibration(real, fake, config.seed)
    if calibration is not None and (len(calibration[0]) < 2 or len(calibration[1]) < 2):
        raise ConfigError("calibration needs at least two real and two generated images")
    key = train_key(real, fake, config, ext.cache_id, calibration)
    if store is not None and reuse:
        hit = store.find_by_train_key(key)
        if hit is not None and hit.watermark.get("checked") is False and config.watermark_match and decoder_available():
            hit = None  # fitted while the watermark could not be checked; now it can: refit
        if hit is not None:
            wanted = {k: getattr(config, k) for k in DECISION_FIELDS}
            changed = any(hit.config.get(k, DECISION_DEFAULTS.get(k)) != v for k, v in wanted.items())
            # same fingerprint, read another way (statistic, decision rule), or stored before cards had a JPEG
            # reading: re-calibrate from the cached residuals, never refit
            if changed or _missing_readings(hit, list(real) + list(fake)):
                hit.config = {**hit.config, **wanted}
                _calibrate(hit, real, fake, calibration, config, store, device, reference_real=reference_real)
                changed = changed or bool(hit.jpeg_reading or hit.offset_reading or hit.upscaled_reading)
            if changed or hit.name != name or (metadata and metadata != hit.metadata):
                hit.name = name
                if metadata:
                    hit.metadata = dict(metadata)
                store.save(hit)
            return hit, True
    total = sum(len(x) for x in (real, fake, *(calibration or ())))
    done = [0]

    def counted(_d: int, _n: int) -> None:
        if residual_progress:
            residual_progress(min(total, done[0] + _d), total)

    def residuals(images: Sequence[LoadedImage]) -> torch.Tensor:
        out = residuals_of(images, config.extractor, config.crop, config.border, store, device, config.pad, counted)
        done[0] += len(images)
        return out

    real, watermark = match_watermark(real, fake, config)
    res_real, res_fake = residuals(real), residuals(fake)
    aug_real, aug_fake = (
        degraded_copies(images, config.augment, config.augment_copies, config.seed) for images in (real, fake)
    )
    if aug_real and aug_fake:
        total += len(aug_real) + len(aug_fake)
        fit_real, fit_fake = torch.cat([res_real, residuals(aug_real)]), torch.cat([res_fake, residuals(aug_fake)])
    else:
        fit_real, fit_fake = res_real, res_fake
    result = fit(config.method, fit_real, fit_fake, config, device, progress)
    tensor = result.tensor
    rho_plain = correlate_tensor(tensor, torch.cat([res_real, res_fake]), config.method)
    if (
        rho_plain[len(real) :].mean() < rho_plain[: len(real)].mean()
    ):  # the sign is arbitrary: fix it, generated side positive
        tensor = -tensor
    fp = Fingerprint(
        name=name,
        method=config.method,
        tensor=tensor,
        mu_real=0.0,
        mu_fake=0.0,
        config=config.to_dict(),
        extractor=config.extractor,
        extractor_id=ext.cache_id,
        crop=config.crop,
        border=config.border,
        seed=config.seed,
        n_real=len(real),
        n_fake=len(fake),
        train_files={"real": [im.sha256 for im in real], "fake": [im.sha256 for im in fake]},
        train_key=key,
        history=result.history,
        seconds=round(result.seconds, 3),
        metadata=dict(metadata or {}),
        watermark=watermark,
    )
    _calibrate(fp, real, fake, calibration, config, store, device, residuals, (res_real, res_fake), reference_real)
    if store is not None:
        store.save(fp)
    return fp, False


def correlate_tensor(tensor: torch.Tensor, residuals: torch.Tensor, method: str) -> np.ndarray:
    """Plain correlations of residuals with a bare fingerprint tensor (before it has a card)."""
    from engine.method.correlation import rho_matrix
    from engine.method.registry import features

    return rho_matrix(features(method, residuals), tensor.unsqueeze(0)).double().cpu().numpy()[:, 0]


def _calibrate(
    fp: Fingerprint,
    real: Sequence[LoadedImage],
    fake: Sequence[LoadedImage],
    calibration: Calibration | None,
    config: TrainConfig,
    store: Store | None,
    device: torch.device | None,
    residuals: Callable[[Sequence[LoadedImage]], torch.Tensor] | None = None,
    fit_residuals: tuple[torch.Tensor, torch.Tensor] | None = None,
    reference_real: Sequence[LoadedImage] = (),
) -> Fingerprint:
    """mu_real, mu_fake, the band, the cut and the training metrics of ``fp`` under its own statistic,
    the JPEG reader for JPEG suspects (``fp.jpeg_reading``, ``_jpeg_reader_record``) and the offset reading.

    They come from the calibration images when there are some; else (a mean fingerprint) from
    leave-one-out scores, else from the training images (and the card says it is optimistic).
    Both readings share one residual pass.
    """
    if residuals is None:

        def residuals(images: Sequence[LoadedImage]) -> torch.Tensor:
            return residuals_of(images, config.extractor, config.crop, config.border, store, device, config.pad)

    if fit_residuals is None:
        real, _ = match_watermark(real, fake, config)
        fit_residuals = (residuals(real), residuals(fake))
    cal_residuals = None
    if calibration is not None:
        cal_real, cal_fake = list(calibration[0]), list(calibration[1])
        cal_residuals = (residuals(cal_real), residuals(cal_fake))
        fp.calibration_set = {
            "source": "held out of fitting",
            "n_real": len(cal_real),
            "n_fake": len(cal_fake),
            "real": [im.sha256 for im in cal_real],
            "fake": [im.sha256 for im in cal_fake],
        }
    _calibrate_on_residuals(fp, fit_residuals, cal_residuals, config)
    fp.jpeg_reading, fp.offset_reading, fp.upscaled_reading = {}, {}, {}
    wanted = _missing_readings(fp, list(real) + list(fake))
    if calibration is not None:  # the template readings: fitted and calibrated on degraded copies
        sources = (fp, (real, fake), calibration, reference_real, residuals, config)
        if "jpeg" in wanted:
            wanted.discard("jpeg")
            fp.jpeg_reading = _jpeg_reader_record(_fit_reader(*sources, JPEG_CHECKS))
        if "upscaled" in wanted:
            fp.upscaled_reading = _upscaled_reader_record(_fit_reader(*sources, UPSCALED_CHECKS))
    for kind, statistic in (("jpeg", JPEG_STATISTIC), ("offset", OFFSET_STATISTIC)):
        if kind in wanted:
            other = _bare_reading(fp, statistic, kind=kind)
            _calibrate_on_residuals(other, fit_residuals, cal_residuals, config)
            if kind == "offset":  # its cut shares the card's budget on the photos the card's cut was set on
                reference = (cal_residuals or fit_residuals)[0]
                rho = correlate([fp, other, _grid_reading(other)], reference)
                share_offset_budget(other, fp, rho, fp.decision.get("reference", "calibration real images"))
            setattr(fp, f"{kind}_reading", _reading_record(other, APPLIES_TO[kind]))
    return fp


def _grid_reading(offset: Fingerprint) -> Fingerprint:
    """The offset reading at no roll (``phase-grid``): where ``phase`` exceeds it, the pattern is off the grid."""
    return replace(offset, config={**offset.config, "correlation": "phase-grid"})


def share_offset_budget(offset: Fingerprint, fp: Fingerprint, rho: np.ndarray, reference: str) -> None:
    """Raise ``offset``'s cut until it flags none of the reference photos (``rho``: their correlations
    under ``fp``, ``offset`` and its no-roll value, N x 3) that sit off the grid and that ``fp``'s own
    reading leaves unflagged.

    Why: offsets are read by default, and an off-grid image is flagged when either reading flags it.
    Each reading's cut alone flags about the target share of photos, so their union flagged more (+0.8
    to +1.7 points of held-out real photos on the transfer pairs). With the cut shared, on the photos
    the card's cut was set on the union flags exactly what the plain reading flags; shifted and offset
    crops keep most of what ``phase`` finds (docs/RESULTS.md, "Robustness"). The record says how far
    the cut moved.
    """
    plain, phase, grid = rho[:, 0], rho[:, 1], rho[:, 2]
    spare = phase[(phase > grid + OFF_GRID_MARGIN) & ~decide(plain, fp.mu_real, fp.mu_fake, fp.threshold)]
    side = 1.0 if offset.mu_fake >= offset.mu_real else -1.0
    # a closer-mean reading (too few photos for a quantile) cuts at the midpoint: that cut is raised alike
    own = offset.threshold if offset.threshold is not None else (offset.mu_real + offset.mu_fake) / 2.0
    cut = side * max(side * own, float(np.max(side * spare))) if spare.size else own
    offset.decision = {
        **offset.decision,
        "threshold": cut,
        "fpr_on_reference": float(np.mean(decide(phase, offset.mu_real, offset.mu_fake, cut))),
        "shared_with_plain": {
            "reference": reference,
            "n_off_grid_unflagged": int(spare.size),
            "own_threshold": own,
            "own_rule": offset.decision.get("rule", "closer-mean"),
        },
    }


def _missing_readings(fp: Fingerprint, training: Sequence[LoadedImage]) -> set[str]:
    """The extra readings a ``plain`` card should have and lacks (a card read another way reads
    everything that way): ``jpeg`` unless it was fitted mostly on JPEGs (it then reads them as it is),
    also when a card with calibration images still has an earlier JPEG reading (before the reader read the
    coefficients' sign leans);
    ``offset``, also when its cut predates the shared budget (``share_offset_budget``); and ``upscaled`` on a
    card with calibration images."""
    if fp.correlation != "plain":
        return set()
    mostly_jpeg = sum(im.is_jpeg for im in training) * 2 > len(training)
    held_out = fp.calibration_set.get("source") == "held out of fitting"
    earlier = bool(fp.jpeg_reading) and "coefficient_weights" not in fp.jpeg_reading and held_out
    offset = fp.offset_reading.get("decision", {}) if fp.offset_reading else {}
    unshared = "shared_with_plain" not in offset
    return (
        ({"jpeg"} if (not fp.jpeg_reading or earlier) and not mostly_jpeg else set())
        | ({"offset"} if not fp.offset_reading or unshared else set())
        | ({"upscaled"} if held_out and not fp.upscaled_reading else set())
    )


def _jpeg_reader_record(fitted: FittedReader) -> dict:
    """The card's JPEG reading: a template fitted on the fit images (at most JPEG_CHECK_IMAGES per
    class, the real side joined by ``reference_real``) re-saved at qualities 90, 75 and 50, read with
    ``periodic-rgb`` and calibrated (mu_real, mu_fake, the cut) on the calibration images re-saved
    the same three ways, pooled (``fitted``, from ``_fit_reader``). So a JPEG suspect is scored and cut
    among JPEGs, not against uncompressed photos (docs/RESULTS.md, "Robustness")."""
    n_cal_real, n_cal_fake = (len(r) // len(JPEG_CHECKS) for r in fitted.cal_residuals)
    qualities = [JPEG_RESAVES[name] for name in JPEG_CHECKS]
    return {
        **_reading_record(fitted.reading, APPLIES_TO["jpeg"]),
        "template": _template_record(fitted.reading),
        "coefficient_weights": [float(f"{w:.7g}") for w in fitted.reading.coefficient_weights],
        "fitted_on": {"qualities": qualities, **fitted.counts},
        "calibrated_on": f"{n_cal_real} real and {n_cal_fake} generated calibration images re-saved at "
        f"JPEG quality {', '.join(map(str, qualities))} (pooled)",
    }


def _upscaled_reader_record(fitted: FittedReader) -> dict:
    """The card's upscaled reading: the JPEG reader's kind of template, fitted on half-size copies
    enlarged back (bicubic) of the fit images and the reference pool's photos, and calibrated among the
    calibration images' copies (``fitted``, from ``_fit_reader``). Enlarging interpolates an up-sampling
    generator's 8-pixel pattern rather than erasing it, and the fingerprint fitted on clean images keeps
    much of its ranking (AUC 0.88 and 0.92 on the transfer pairs) but not its cut, which was set on clean
    photos (docs/RESULTS.md, "Robustness")."""
    n_cal_real, n_cal_fake = (len(r) for r in fitted.cal_residuals)
    return {
        **_reading_record(fitted.reading, APPLIES_TO["upscaled"]),
        "template": _template_record(fitted.reading),
        "fitted_on": {"copies": "half size, enlarged back (bicubic)", **fitted.counts},
        "calibrated_on": f"{n_cal_real} real and {n_cal_fake} generated calibration images, "
        "half size and enlarged back",
    }


class FittedReader(NamedTuple):
    """A template reading with what it was fitted and calibrated on (residuals degradation by degradation)."""

    reading: Fingerprint
    counts: dict
    fit_residuals: tuple[torch.Tensor, torch.Tensor]
    cal_residuals: tuple[torch.Tensor, torch.Tensor]


def _fit_reader(
    fp: Fingerprint,
    fit_images: tuple[Sequence[LoadedImage], Sequence[LoadedImage]],
    calibration: Calibration,
    reference_real: Sequence[LoadedImage],
    residuals: Callable[[Sequence[LoadedImage]], torch.Tensor],
    config: TrainConfig,
    degradations: Sequence[str],
) -> FittedReader:
    """A template reading (``periodic-rgb``) fitted on ``degradations`` of the fit images (at most
    JPEG_CHECK_IMAGES per class, the real side joined by ``reference_real``, both classes degraded
    alike so the degradation is never the tell) and calibrated on the calibration images degraded the
    same ways, pooled. The residuals come back too (degradation by degradation, in the order given), so
    a caller can calibrate another statistic on them."""
    own_real = list(fit_images[0])[:JPEG_CHECK_IMAGES]
    real = own_real + [im for im in reference_real if min(im.pixels.shape[:2]) >= config.crop]
    fake = list(fit_images[1])[:JPEG_CHECK_IMAGES]
    cal_real, cal_fake = (list(images)[:JPEG_CHECK_IMAGES] for images in calibration)

    copies = [  # degradation by degradation, per side
        [im for name in degradations for im in perturb(images, name)] for images in (real, fake, cal_real, cal_fake)
    ]
    fit_real, fit_fake, res_cal_real, res_cal_fake = (residuals(images) for images in copies)
    jpeg_copies = all(name in JPEG_RESAVES for name in degradations)
    leans = [sign_leans(images) for images in copies] if jpeg_copies else None  # their coefficients' sign leans
    template, weights = fit_reader(
        periodic_features(fit_real), periodic_features(fit_fake), *(leans[:2] if leans else (None, None))
    )
    reader = _bare_reading(
        fp,
        READER_STATISTIC,
        kind="jpeg" if jpeg_copies else "upscaled",
        tensor=tile_template(template, tuple(fp.tensor.shape)),
        coefficient_weights=weights,
    )
    terms = None if leans is None else (np.concatenate(leans[:2]) @ weights, np.concatenate(leans[2:]) @ weights)
    _calibrate_on_residuals(reader, (fit_real, fit_fake), (res_cal_real, res_cal_fake), config, terms)
    counts = {"n_real": len(own_real), "n_reference_real": len(real) - len(own_real), "n_generated": len(fake)}
    return FittedReader(reader, counts, (fit_real, fit_fake), (res_cal_real, res_cal_fake))


def _template_record(reader: Fingerprint) -> list:
    """A reader's C x 8 x 8 template as the card keeps it (its tiling's top-left period, rounded)."""
    return np.round(reader.tensor[:, :8, :8].double().numpy(), 6).tolist()


def _bare_reading(fp: Fingerprint, statistic: str, kind: str | None = None, **changes: object) -> Fingerprint:
    """``fp`` under ``statistic`` with no extra readings of its own: a reading reads one way. The ``kind``
    "jpeg" reading cuts at the card's ``jpeg_target_fpr`` when it has one."""
    config = {**fp.config, "correlation": statistic}
    if kind == "jpeg" and fp.config.get("jpeg_target_fpr"):
        config["target_fpr"] = fp.config["jpeg_target_fpr"]
    return replace(
        fp,
        config=config,
        jpeg_reading={},
        offset_reading={},
        upscaled_reading={},
        **changes,
    )


def _calibrate_on_residuals(
    fp: Fingerprint,
    fit_residuals: tuple[torch.Tensor, torch.Tensor],
    cal_residuals: tuple[torch.Tensor, torch.Tensor] | None,
    config: TrainConfig,
    terms: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """``_calibrate`` once the residuals are in hand: under ``fp``'s own statistic. ``terms``: what a
    JPEG reader's coefficient weights add to each fit and calibration image's rho (``coefficient_terms``)."""
    res_real, res_fake = fit_residuals
    fit_terms, cal_terms = terms if terms is not None else (0.0, 0.0)
    rho_fit = correlate([fp], torch.cat([res_real, res_fake]))[:, 0] + fit_terms
    fit_real, fit_fake = rho_fit[: len(res_real)], rho_fit[len(res_real) :]
    if cal_residuals is not None:
        rho_cal = correlate([fp], torch.cat(cal_residuals))[:, 0] + cal_terms
        cal_r, cal_f = rho_cal[: len(cal_residuals[0])], rho_cal[len(cal_residuals[0]) :]
    elif not get_method(config.method).learned and len(res_fake) > 1:
        # a mean fingerprint contains each training image: score each one against the mean of the others
        cal_r, cal_f = fit_real, leave_one_out_rho(fp.method, fp.tensor, res_fake, fp.correlation).double().numpy()
        fp.calibration_set = {
            "source": "leave-one-out on the training images",
            "n_real": len(res_real),
            "n_fake": len(res_fake),
        }
    else:
        cal_r, cal_f = fit_real, fit_fake
        fp.calibration_set = {
            "source": "training images (too few to hold any out: optimistic)",
            "n_real": len(res_real),
            "n_fake": len(res_fake),
        }
    fp.mu_real, fp.mu_fake = float(cal_r.mean()), float(cal_f.mean())
    fp.train_rho_real, fp.train_rho_fake = cal_r.astype(np.float32), cal_f.astype(np.float32)
    fp.calibration = (
        calibrate(cal_r, cal_f, source="calibration").to_dict() if len(cal_r) >= 2 and len(cal_f) >= 2 else {}
    )
    fp.reference_pool = {}
    set_decision(fp, cal_r, "calibration real images")
    fp.train_metrics = metrics_from_rho(fp, fit_real, fit_fake)


APPLIES_TO = {
    "jpeg": "JPEG files and JPEG re-saves",
    "offset": "images whose 8-pixel pattern sits off the crop's grid (shifted or offset crops)",
    "upscaled": "images that look upscaled (their spectrum falls off a cliff above 0.3 cycles/pixel)",
}


def _reading_record(reading: Fingerprint, applies_to: str) -> dict:
    """What the card keeps of an extra reading: enough to rebuild it (``reading_of``) and re-fit it on a pool."""
    return {
        "statistic": reading.correlation,
        "applies_to": applies_to,
        "mu_real": float(reading.mu_real),
        "mu_fake": float(reading.mu_fake),
        "calibration": reading.calibration,
        "decision": reading.decision,
        "rho_fake": [round(float(v), 7) for v in reading.train_rho_fake],
    }


def jpeg_reading_of(fp: Fingerprint) -> Fingerprint | None:
    """``fp`` as it reads a JPEG: the JPEG reader (its template under ``periodic-rgb`` plus its weights on
    the file's coefficient sign leans), or on a card without calibration images the fingerprint itself
    under ``periodic``; each calibrated among JPEG re-saves where the card had images to hold out.

    None when the card has no JPEG reading (a card from before it, or one read with another statistic).
    """
    return reading_of(fp, "jpeg")


def offset_reading_of(fp: Fingerprint) -> Fingerprint | None:
    """``fp`` as it reads an image whose 8-pixel pattern sits off the grid: ``phase``, calibrated alike."""
    return reading_of(fp, "offset")


def reading_of(fp: Fingerprint, kind: str) -> Fingerprint | None:
    """``fp`` under its ``kind`` reading's statistic and calibration (None: the card has none)."""
    record = getattr(fp, f"{kind}_reading")
    return _reading_from_record(fp, record, kind) if record else None


def _reading_from_record(fp: Fingerprint, record: object, kind: str) -> Fingerprint:
    """Rebuild a reading from its card record; a one-line ConfigError when the record is malformed."""
    try:
        statistic = str(record["statistic"])
        mu_real, mu_fake = float(record["mu_real"]), float(record["mu_fake"])
        calibration, decision = dict(record["calibration"]), dict(record["decision"])
        rho_fake = np.asarray(record["rho_fake"], dtype=np.float32)
        if statistic not in CORRELATIONS or not (math.isfinite(mu_real) and math.isfinite(mu_fake)):
            raise ValueError(statistic)
        tensor = fp.tensor if "template" not in record else _template_tensor(record["template"], fp.tensor.shape)
        weights = None
        if "coefficient_weights" in record:
            weights = np.asarray(record["coefficient_weights"], dtype=np.float64)
            if weights.shape != (N_COEFFICIENTS,) or not np.isfinite(weights).all():
                raise ValueError("coefficient_weights")
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"model {fp.name!r}: its card's {kind}_reading is malformed") from None
    return _bare_reading(
        fp,
        statistic,
        kind=kind,
        tensor=tensor,
        mu_real=mu_real,
        mu_fake=mu_fake,
        calibration=calibration,
        decision=decision,
        train_rho_fake=rho_fake,
        coefficient_weights=weights,
    )


def _template_tensor(raw: object, shape: torch.Size) -> torch.Tensor:
    """A card's reader template (C x 8 x 8 numbers) tiled to the fingerprint's shape; ValueError if malformed."""
    template = np.asarray(raw, dtype=np.float32)
    if template.shape != (shape[0], 8, 8) or not np.isfinite(template).all() or not template.any():
        raise ValueError("template")
    return tile_template(template, tuple(shape))


Chooser = Callable[[np.ndarray], list[list[int]]]


def with_readings(
    fingerprints: Sequence[Fingerprint], images: Sequence[LoadedImage], offsets: bool = True
) -> tuple[list[Fingerprint], Chooser]:
    """The fingerprints, then the extra readings some image needs; and a chooser that, given the
    correlations of every image under every reading (one residual pass serves them all), says per
    image and model which column reads it.

    A JPEG is read with the model's JPEG reading (``jpeg_reading_of``). An
    image enlarged by pixel repetition (``upscale_kind``: no photo repeats its pixels) is read with
    the model's upscaled reading; one that looks interpolated up is read with the model's own statistic
    and its upscaled reading, and the reading with the higher signed score decides, so nothing the
    plain reading flags is lost on clean images that merely look smooth. Half-size copies enlarged back
    keep 0.84-0.87 where the plain reading gives 0.66-0.74 (docs/RESULTS.md, "Robustness"). Any
    other image is read with the model's own statistic and, with ``offsets`` (the default), when its
    8-pixel pattern sits off the grid (``phase`` above its no-roll value ``phase-grid``), also with
    the offset reading: the reading with the higher signed score decides. A copy shifted by one pixel
    reads as chance with the plain reading alone; the offset reading's cut shares the card's
    false-positive budget (``share_offset_budget``), so on the photos the card's cut was set on the
    pair flags what the plain reading flags (docs/RESULTS.md, "Robustness").
    """
    readings = list(fingerprints)
    jpeg_col: dict[int, int] = {}  # model -> column
    offset_col: dict[int, tuple[int, int]] = {}
    upscaled_col: dict[int, int] = {}
    enlarged = (
        [None if im.is_jpeg else upscale_kind(im.pixels) for im in images]
        if any(fp.upscaled_reading for fp in fingerprints)
        else [None] * len(images)
    )
    for j, fp in enumerate(fingerprints):
        if any(reads_as_jpeg(fp, im) for im in images):
            jpeg_col[j] = len(readings)
            readings.append(jpeg_reading_of(fp))
        if fp.upscaled_reading and any(enlarged):
            upscaled_col[j] = len(readings)
            readings.append(reading_of(fp, "upscaled"))
        offset = offset_reading_of(fp) if offsets else None
        if offset is not None and any(not reads_as_jpeg(fp, im) for im in images):
            grid = _grid_reading(offset)
            offset_col[j] = (len(readings), len(readings) + 1)
            readings += [offset, grid]

    def choose(rho: np.ndarray) -> list[list[int]]:
        compared = [(j, o) for j, (o, _) in offset_col.items()] + list(upscaled_col.items())  # the surer decides
        scores = {k: scores_and_decisions(readings[k], rho[:, k])[0] for pair in compared for k in pair}
        columns = []
        for i, im in enumerate(images):
            row = []
            for j, fp in enumerate(fingerprints):
                k = j
                if reads_as_jpeg(fp, im):
                    k = jpeg_col[j]
                elif enlarged[i] and j in upscaled_col:  # a repetition is certain: no photo repeats its pixels
                    u = upscaled_col[j]
                    k = u if enlarged[i] == "repeated" or scores[u][i] > scores[j][i] else j
                elif j in offset_col:
                    o, g = offset_col[j]
                    if rho[i, o] > rho[i, g] + OFF_GRID_MARGIN and scores[o][i] > scores[j][i]:
                        k = o
                row.append(k)
            columns.append(row)
        return columns

    return readings, choose


OFF_GRID_MARGIN = 1e-6  # phase's maximum over rolls beyond its no-roll value: the pattern sits off the grid


def reading_kind(fp: Fingerprint, reading: Fingerprint, image: LoadedImage) -> str:
    """How a row names the reading that decided it (empty: the model's own)."""
    if reading is fp:
        return ""
    if reads_as_jpeg(fp, image):
        quality = "unknown" if image.jpeg_quality is None else f"{image.jpeg_quality:.0f}"
        return f"{reading.correlation} (JPEG quality {quality})"
    if reads_as_upscaled(fp, reading, image):
        return f"{reading.correlation} (the image looks upscaled)"
    return f"{reading.correlation} (the image's 8-pixel pattern sits off the grid)"


def reads_as_upscaled(fp: Fingerprint, reading: Fingerprint, image: LoadedImage) -> bool:
    """Whether ``reading``, chosen for ``image`` by ``with_readings``, is ``fp``'s upscaled reading
    (the one template reading a non-JPEG gets)."""
    return reading is not fp and not reads_as_jpeg(fp, image) and reading.correlation == READER_STATISTIC


def reads_as_jpeg(fp: Fingerprint, image: LoadedImage) -> bool:
    """Whether ``fp`` reads ``image`` with its JPEG reading: any JPEG, when the card has one. On the
    transfer pairs ``periodic`` beat ``plain`` at every quality measured, 95 to 50 (docs/RESULTS.md)."""
    return bool(fp.jpeg_reading) and image.is_jpeg


def set_decision(fp: Fingerprint, rho_real: np.ndarray, reference: str) -> Fingerprint:
    """Record the decision rule of ``fp.config`` in the card, fitting the cut on ``rho_real`` for ``real-fpr``.

    The cut is the (1 - target) quantile of the real photos' correlations on the generated side, so
    at most ``target_fpr`` of photos like these are flagged, wherever the generated images fall.
    """
    config = TrainConfig.from_dict(fp.config)
    if config.decision == "closer-mean" or fp.mu_fake == fp.mu_real:
        fp.decision = {"rule": "closer-mean"}
        return fp
    needed = math.ceil(1.0 / config.target_fpr)
    if len(rho_real) < needed:  # a quantile at 1/needed of fewer photos is just their maximum: no estimate
        fp.decision = {
            "rule": "closer-mean",
            "reason": f"only {len(rho_real)} {reference}, fewer than the {needed} a "
            f"{config.target_fpr:.0%} cut needs (add real photos with --reference-pool)",
        }
        return fp
    side = 1.0 if fp.mu_fake > fp.mu_real else -1.0
    cut = side * float(np.quantile(side * np.asarray(rho_real, np.float64), 1.0 - config.target_fpr, method="higher"))
    flagged = float(np.mean(decide(rho_real, fp.mu_real, fp.mu_fake, cut)))
    fp.decision = {
        "rule": "real-fpr",
        "threshold": cut,
        "target_fpr": config.target_fpr,
        "reference": reference,
        "n_reference": int(len(rho_real)),
        "fpr_on_reference": flagged,
    }
    return fp


def match_watermark(
    real: Sequence[LoadedImage], fake: Sequence[LoadedImage], config: TrainConfig
) -> tuple[list[LoadedImage], dict]:
    """Watermark-matched training: mark a share of the real images when the generated ones carry a known watermark.

    Returns the real images to train on and the card's ``watermark`` record (survey and decision).
    Which real images are marked is seeded (``config.seed``), so a run is reproducible.
    """
    if not config.watermark_match:
        return list(real), {"matched": False, "reason": "turned off (watermark_match=False)"}
    found = survey(fake)
    if found.unread:  # training without the check would let a watermark pass for the generator's trace
        return list(real), {
            "matched": False,
            "checked": False,
            "survey": found.to_dict(),
            "reason": f"not checked: {MISSING}",
        }
    if found.generator is None:
        return list(real), {
            "matched": False,
            "survey": found.to_dict(),
            "reason": "no known watermark in the generated training images",
        }
    out = mark_share(real, config.watermark_share, config.seed)
    n_marked = sum(1 for a, b in zip(out, real) if a is not b)
    return out, {
        "matched": True,
        "survey": found.to_dict(),
        "marked_real": n_marked,
        "reason": f"{found.marked}/{found.checked} generated training images carry the {found.generator} watermark; "
        f"it was embedded into {n_marked} of the {len(real)} real training images",
    }


def metrics_from_rho(fp: Fingerprint, rho_real: np.ndarray, rho_fake: np.ndarray) -> dict:
    rho = np.concatenate([rho_real, rho_fake])
    labels = np.concatenate([np.zeros(len(rho_real)), np.ones(len(rho_fake))])
    scores, preds = scores_and_decisions(fp, rho)
    out = detection_metrics(labels, preds, scores)
    out.update(
        {
            "mu_real_observed": float(np.mean(rho_real)) if len(rho_real) else None,
            "mu_fake_observed": float(np.mean(rho_fake)) if len(rho_fake) else None,
        }
    )
    return out


def rho_for(
    fingerprints: Sequence[Fingerprint],
    images: Sequence[LoadedImage],
    store: Store | None = None,
    device: torch.device | None = None,
    pad: bool = False,
    progress: ResidualProgress | None = None,
    max_tiles: int = 1,
) -> np.ndarray:
    """N images x M fingerprints correlations; one residual pass per distinct geometry, not per model.

    With ``max_tiles`` > 1 an image larger than two crops is scored on a spread of tiles and its
    correlation is their mean (``engine/data/tiles.py``)."""
    return tiled_rho(fingerprints, images, store, device, pad, progress, max_tiles)[0]


def coefficient_terms(readings: Sequence[Fingerprint], images: Sequence[LoadedImage]) -> np.ndarray:
    """N x M: what each JPEG reader's coefficient weights add to its rho on each JPEG image (zero elsewhere):
    the sign leans of the file's own quantised coefficients (``engine/method/jpeg_coefficients.py``)."""
    out = np.zeros((len(images), len(readings)))
    cols = [j for j, reading in enumerate(readings) if reading.coefficient_weights is not None]
    rows = [i for i, im in enumerate(images) if im.is_jpeg]
    if cols and rows:
        weights = np.stack([readings[j].coefficient_weights for j in cols], axis=1)
        out[np.ix_(rows, cols)] = sign_leans([images[i] for i in rows]) @ weights
    return out


def tiled_rho(
    fingerprints: Sequence[Fingerprint],
    images: Sequence[LoadedImage],
    store: Store | None = None,
    device: torch.device | None = None,
    pad: bool = False,
    progress: ResidualProgress | None = None,
    max_tiles: int = DEFAULT_MAX_TILES,
) -> tuple[np.ndarray, list[list[Box]], list[np.ndarray]]:
    """(mean correlation N x M, the boxes analysed per image, per-tile correlations per image) for the
    first fingerprint's geometry; the boxes tell a viewer which parts of each image were used."""
    out = np.zeros((len(images), len(fingerprints)))
    groups: dict[tuple[str, int, int], list[int]] = {}
    for j, fp in enumerate(fingerprints):
        groups.setdefault((fp.extractor, fp.crop, fp.border), []).append(j)
    first_boxes: list[list[Box]] = []
    first_tiles: list[np.ndarray] = []
    for (extractor, crop, border), idx in groups.items():
        tiles, owners, boxes = tiles_of(images, crop, max_tiles, pad)
        res = residuals_of(tiles, extractor, crop, border, store, device, pad, progress)
        these = [fingerprints[j] for j in idx]
        per_tile = correlate(these, res) + coefficient_terms(these, tiles)
        owner = np.asarray(owners)
        for i in range(len(images)):
            out[i, idx] = per_tile[owner == i].mean(axis=0)
        if not first_boxes:
            first_boxes = boxes
            first_tiles = [per_tile[owner == i] for i in range(len(images))]
    return out, first_boxes, first_tiles


def evaluate(
    fp: Fingerprint,
    real: Sequence[LoadedImage],
    fake: Sequence[LoadedImage],
    store: Store | None = None,
    device: torch.device | None = None,
) -> dict:
    """Detection metrics of ``fp`` on real and generated images, read as ``dif detect`` reads them
    (a JPEG with the JPEG reading, an off-grid image also with the offset reading), so a card's
    accuracy is the one a user gets; ``n_read_off_grid`` counts the images the offset reading decided."""
    rows = detect(fp, list(real) + list(fake), store, device, max_tiles=1)
    labels = np.r_[np.zeros(len(real)), np.ones(len(fake))]
    out = detection_metrics(
        labels, np.array([r["label"] == "generated" for r in rows]), np.array([r["score"] for r in rows])
    )
    out["n_read_off_grid"] = sum("off the grid" in r.get("reading", "") for r in rows)
    return out


def detect(
    fp: Fingerprint,
    images: Sequence[LoadedImage],
    store: Store | None = None,
    device: torch.device | None = None,
    pad: bool = False,
    max_tiles: int = DEFAULT_MAX_TILES,
    offsets: bool = True,
) -> list[dict]:
    """Per image: rho (the mean over the analysed tiles), signed score, label, the tiles analysed, any warnings.

    A JPEG is read with the card's JPEG reading, an image that looks upscaled with its upscaled
    reading, and with ``offsets`` (the default) an image whose pattern sits off the grid also with the
    offset reading (``with_readings``; the row says ``"reading"``); all readings come from one residual pass.
    """
    readings, choose = with_readings([fp], images, offsets)
    rho_all, boxes, per_tile = tiled_rho(readings, images, store, device, pad, max_tiles=max_tiles)
    columns = choose(rho_all)
    decided = [(reading, *scores_and_decisions(reading, rho_all[:, k])) for k, reading in enumerate(readings)]
    rows = []
    for i, im in enumerate(images):
        k = columns[i][0]
        reading, scores, preds = decided[k]
        r = rho_all[i, k]
        row = {
            "file": im.source,
            "sha256": im.sha256,
            "rho": float(r),
            "score": float(scores[i]),
            "label": "generated" if preds[i] else "real",
            "model": fp.name,
            "tiles": [list(b) for b in boxes[i]],
        }
        if k:
            row["reading"] = reading_kind(fp, reading, im)
        if len(boxes[i]) > 1:
            row["tile_rho"] = [round(float(v), 6) for v in per_tile[i][:, k]]
        cal = from_card(reading.calibration)
        if cal is not None:
            row.update({"confidence": float(cal.confidence(r)), "calibrated": str(cal.verdict(r))})
        warnings = image_warnings(im, fp.crop)
        rates = jpeg_rates_for(fp, im.jpeg_quality) if k and reads_as_jpeg(fp, im) else None
        if rates:  # the reading's cut was set on uncompressed photos: say what it does at this quality
            row["jpeg_rates"] = rates
            warnings = warnings + [
                f"read against this model's held-out images re-saved at JPEG quality {rates['quality']}, "
                f"this reading {jpeg_rates_phrase(rates)}"
            ]
        if k and reads_as_upscaled(fp, reading, im):
            warnings = warnings + [
                "read with this model's upscaled reading, calibrated among half-size copies enlarged back"
            ]
        if warnings:  # one model's reading weakens under the same conditions as attribution's
            row["warnings"] = warnings
        rows.append(row)
    return rows


def calibrate_on_pool(
    fp: Fingerprint, pool: ReferencePool, store: Store | None = None, device: torch.device | None = None
) -> Fingerprint:
    """Re-estimate mu_real, the real side of the band and the decision cut on a broad pool of real photos.

    The generated side stays as measured on the calibration images. The card records the pool
    (sources, images, scenes) and the mu_real the calibration photos alone gave. The offset reading
    (and the earlier JPEG reading, on cards without a JPEG reader) is re-fitted on the same pool in
    the same residual pass.
    """
    pool_images = (
        [im for im in crop_images(pool.images, fp.crop, pad=False) if im.pixels.shape[:2] == (fp.crop, fp.crop)]
        if pool.images
        else []
    )
    if len(pool_images) < 2:
        return fp
    # a reader (JPEG, upscaled) was fitted with the pool and is calibrated among degraded copies: the pool's clean
    # photos stay out of it
    extra = {kind: reading_of(fp, kind) for kind in APPLIES_TO if "template" not in getattr(fp, f"{kind}_reading")}
    extra = {kind: reading for kind, reading in extra.items() if reading is not None}
    grid = [_grid_reading(extra["offset"])] if "offset" in extra else []
    rho_pool = rho_for([fp, *extra.values(), *grid], pool_images, store, device)
    _fit_on_pool(fp, rho_pool[:, 0], pool)
    for column, (kind, reading) in enumerate(extra.items(), start=1):
        _fit_on_pool(reading, rho_pool[:, column], pool)
        if kind == "offset":
            share_offset_budget(reading, fp, rho_pool[:, [0, column, -1]], "reference pool")
        setattr(fp, f"{kind}_reading", _reading_record(reading, APPLIES_TO[kind]))
    return fp


def _fit_on_pool(fp: Fingerprint, rho_pool: np.ndarray, pool: ReferencePool) -> None:
    """``calibrate_on_pool`` once the pool's correlations under ``fp``'s statistic are known."""
    training_mu = fp.reference_pool.get("mu_real_training", fp.mu_real)
    fp.mu_real, band = pool_calibration(rho_pool, fp.train_rho_fake)
    if band is not None:
        fp.calibration = band.to_dict()
    fp.reference_pool = {
        **pool.summary(),
        "pool_id": pool_id(pool),
        "mu_real_training": float(training_mu),
        "mu_real_pool": float(rho_pool.mean()),
        "sd_real_pool": float(rho_pool.std()),
    }
    set_decision(fp, rho_pool, "reference pool")


def split_folder(folder: str | Path, seed: int) -> tuple[list[Path], list[Path]]:
    """Group-aware seeded halves of the images under ``folder``."""
    from engine.data.images import list_images

    files = list_images(folder)
    try:
        return split_half(files, seed)
    except ValueError as exc:
        raise ConfigError(f"{folder}: {exc}") from None


def train_from_folders(
    name: str,
    real_dir: str | Path,
    fake_dir: str | Path,
    config: TrainConfig = TrainConfig(),
    train_size: int | None = None,
    store: Store | None = None,
    device: torch.device | None = None,
    progress: ProgressFn | None = None,
    residual_progress: ResidualProgress | None = None,
    strict: bool = False,
    metadata: dict | None = None,
    evaluate_test: bool = True,
    reference_pool: ReferencePool | None = None,
) -> dict:
    """The ``dif train`` contract: split each folder in halves, fit on N + N, test on the held-out halves.

    The train half's images beyond N are the calibration images (mu_real, mu_fake, the band, the
    cut); with fewer than MIN_CALIBRATION of them a quarter of the fit images is held out instead.
    With a ``reference_pool``, mu_real, the real side of the band and the cut come from the pool.
    The test halves are used for nothing but the reported metrics.
    """
    real_train_files, real_test_files = split_folder(real_dir, config.seed)
    fake_train_files, fake_test_files = split_folder(fake_dir, config.seed)
    real_fit_files = take(real_train_files, train_size, config.seed)
    fake_fit_files = take(fake_train_files, train_size, config.seed)
    real_cal_files = take([f for f in real_train_files if f not in set(real_fit_files)], MAX_CALIBRATION, config.seed)
    fake_cal_files = take([f for f in fake_train_files if f not in set(fake_fit_files)], MAX_CALIBRATION, config.seed)
    skipped: list[str] = []

    def load(files: list[Path]) -> list[LoadedImage]:
        images, bad = load_images(files, crop=None, strict=strict)
        skipped.extend(str(e) for e in bad)
        images = _usable(images, config, skipped)
        return resave_jpeg(images, config.resave_jpeg) if config.resave_jpeg else images

    real_fit, fake_fit = load(real_fit_files), load(fake_fit_files)
    warnings = [] if config.resave_jpeg else format_warnings(real_fit, fake_fit)
    calibration = None
    if len(real_cal_files) >= MIN_CALIBRATION and len(fake_cal_files) >= MIN_CALIBRATION:
        cal_real, cal_fake = load(real_cal_files), load(fake_cal_files)
        calibration = (cal_real, cal_fake) if len(cal_real) >= 2 and len(cal_fake) >= 2 else None
    fp, cached = train_fingerprint(
        name,
        real_fit,
        fake_fit,
        config,
        store,
        device,
        progress,
        residual_progress,
        metadata,
        calibration=calibration,
        reference_real=reference_pool.images if reference_pool is not None else (),
    )
    held_out = None
    if evaluate_test:
        real_test, fake_test = load(real_test_files), load(fake_test_files)
        test_files = {"real": [im.source for im in real_test], "fake": [im.source for im in fake_test]}
        held_out = (real_test, fake_test, test_files)
    metrics = finish_training(fp, held_out, reference_pool, store, device, calibration)
    warnings += card_warnings(fp)
    return {"fingerprint": fp, "cached": cached, "skipped": skipped, "test_metrics": metrics, "warnings": warnings}


def card_warnings(fp: Fingerprint) -> list[str]:
    """What a trained card itself says the user should know: today, a watermark check that could not run."""
    watermark = fp.watermark or {}
    if watermark.get("checked") is False:
        return [
            f"the generated images were not checked for the Stable Diffusion watermark ({MISSING}); if they "
            "carry it, this fingerprint may have learnt the watermark and will flag watermarked real photos"
        ]
    return []


HeldOut = tuple[Sequence[LoadedImage], Sequence[LoadedImage], dict]  # real, generated, where the card says they are


def finish_training(
    fp: Fingerprint,
    held_out: HeldOut | None,
    reference_pool: ReferencePool | None,
    store: Store | None = None,
    device: torch.device | None = None,
    calibration: Calibration | None = None,
) -> dict | None:
    """After a fit: mu_real from the reference pool, the JPEG reading's rates on the ``calibration``
    images re-saved (``measure_jpeg_rates``), metrics on the held-out images, the card stored.

    The one sequence behind ``dif train`` (the folders' held-out halves) and the dashboard (a share
    of the uploads). Returns the test metrics: None when ``held_out`` is None (the card keeps what
    it had), {} when a class has no held-out image.
    """
    if held_out is None or not (held_out[0] and held_out[1]):
        if reference_pool is not None:
            calibrate_on_pool(fp, reference_pool, store, device)
        measure_jpeg_rates(fp, calibration, store, device)
        metrics = None if held_out is None else {}
        if held_out is not None:
            fp.test_metrics, fp.test_files = {}, {}
    else:
        real_test, fake_test, test_files = held_out
        metrics = held_out_metrics(fp, real_test, fake_test, reference_pool, store, device)
        fp.test_metrics, fp.test_files = metrics, test_files
        measure_jpeg_rates(fp, calibration, store, device)
    if store is not None and (held_out is not None or reference_pool is not None or calibration is not None):
        store.save(fp)
    return metrics


JPEG_CHECKS = ("jpeg90", "jpeg75", "jpeg50")  # qualities at which a card measures its JPEG reading
JPEG_CHECK_IMAGES = 64  # per class at most: a rate to about +-6 points, at a bounded cost per fit


def measure_jpeg_rates(
    fp: Fingerprint,
    calibration: Calibration | None,
    store: Store | None = None,
    device: torch.device | None = None,
) -> None:
    """How the card's JPEG reading labels its own calibration images re-saved at qualities 90, 75, 50
    (``fp.jpeg_reading["by_quality"]``).

    These are the rates a JPEG suspect of that quality should be read against. They are measured on
    images the fingerprint was not fitted to, from the user's own real folder, and say so. A JPEG
    reader's cut was set on these same re-saves (``cut_set_here``: the real rate is in-sample); the
    earlier reading's cut was set on uncompressed photos, and its false-positive target did not hold
    for JPEGs (docs/RESULTS.md, "Robustness"). No calibration images or no JPEG reading: nothing is
    measured.
    """
    reading = jpeg_reading_of(fp)  # one reading at every quality
    if reading is None or calibration is None or not (calibration[0] and calibration[1]):
        return
    real, fake = list(calibration[0])[:JPEG_CHECK_IMAGES], list(calibration[1])[:JPEG_CHECK_IMAGES]
    rates = []
    for name in JPEG_CHECKS:
        rho = rho_for([reading], perturb(real, name) + perturb(fake, name), store, device)[:, 0]
        flagged = scores_and_decisions(reading, rho)[1]
        rates.append(
            {
                "quality": JPEG_RESAVES[name],
                "flagged_real": round(float(flagged[: len(real)].mean()), 4),
                "flagged_generated": round(float(flagged[len(real) :].mean()), 4),
                "n_real": len(real),
                "n_generated": len(fake),
                "cut_set_here": "template" in fp.jpeg_reading,
            }
        )
    fp.jpeg_reading = {**fp.jpeg_reading, "by_quality": rates}


def jpeg_rates_for(fp: Fingerprint, quality: float | None) -> dict | None:
    """The measured rates nearest to a suspect's estimated JPEG quality (None: none measured)."""
    raw = (fp.jpeg_reading or {}).get("by_quality") or []
    try:
        rates = [
            {
                "quality": int(r["quality"]),
                **{k: float(r[k]) for k in ("flagged_real", "flagged_generated")},
                **{k: int(r[k]) for k in ("n_real", "n_generated")},
                "cut_set_here": bool(r.get("cut_set_here", False)),
            }
            for r in raw
        ]
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"model {fp.name!r}: its card's jpeg_reading is malformed") from None
    if not rates:
        return None
    return min(rates, key=lambda r: abs(r["quality"] - (75 if quality is None else quality)))


def jpeg_rates_phrase(rates: dict) -> str:
    """The measured rates in words, as detect rows and attribution warnings state them."""
    return (
        f"flagged {rates['flagged_real']:.0%} of {rates['n_real']} real photos and "
        f"{rates['flagged_generated']:.0%} of {rates['n_generated']} generated images"
        + (" (its cut was set on these real photos)" if rates.get("cut_set_here") else "")
    )


def held_out_metrics(
    fp: Fingerprint,
    real: Sequence[LoadedImage],
    fake: Sequence[LoadedImage],
    reference_pool: ReferencePool | None,
    store: Store | None,
    device: torch.device | None = None,
) -> dict:
    """Held-out metrics as ``dif detect`` reads the images (``evaluate``), with mu_real from the pool
    (``reference_pool``, re-fitted here), beside what the plain reading gave (``accuracy_plain_reading``),
    what mu_real from the training photos gave, and the calibration band's rates. One sequence for
    ``dif train``, the dashboard and the study runner, so their cards agree."""
    rho = rho_for([fp], list(real) + list(fake), store, device)[:, 0]
    rho_r, rho_f = rho[: len(real)], rho[len(real) :]
    before = metrics_from_rho(fp, rho_r, rho_f) if reference_pool is not None else None
    if reference_pool is not None:
        calibrate_on_pool(fp, reference_pool, store, device)
    metrics = metrics_from_rho(fp, rho_r, rho_f)
    if before is not None:
        metrics.update(
            {"accuracy_training_mu_real": before["accuracy"], "acc_real_training_mu_real": before["acc_real"]}
        )
    cal = from_card(fp.calibration)
    if cal is not None and len(rho_r) and len(rho_f):
        metrics.update(cal.held_out_rates(rho_r, rho_f))
    metrics["accuracy_plain_reading"] = metrics["accuracy"]
    metrics.update(evaluate(fp, real, fake, store, device))
    return metrics


HOLDOUT_SHARE = 0.25  # of each class's uploads, kept out of training to measure held-out accuracy
MIN_HOLDOUT = 2  # per class; fewer uploads than 2 / HOLDOUT_SHARE per class cannot be checked


def hold_out(images: Sequence[LoadedImage], seed: int) -> tuple[list[LoadedImage], list[LoadedImage]]:
    """(train, held out): whole content groups (tiles of one photo) stay on one side, as in folder training."""
    if len(images) < MIN_HOLDOUT / HOLDOUT_SHARE:
        return list(images), []
    test, train = share_out(images, seed + 31, HOLDOUT_SHARE, MIN_HOLDOUT, key=lambda im: im.source)
    return (train, test) if len(test) >= MIN_HOLDOUT and train else (list(images), [])


def train_from_images(
    name: str,
    real: Sequence[LoadedImage],
    fake: Sequence[LoadedImage],
    config: TrainConfig,
    store: Store,
    reference_pool: ReferencePool | None,
    device: torch.device | None = None,
    progress: ProgressFn | None = None,
    residual_progress: ResidualProgress | None = None,
) -> dict:
    """Images already in memory (uploads): hold a quarter of each class out, fit on the rest, then
    ``finish_training``; the held-out images are kept in the store for cross-detection."""
    if not real or not fake:
        raise ConfigError("upload at least one generated and one real image (or a zip of them)")
    real_fit, real_test = hold_out(real, config.seed)
    fake_fit, fake_test = hold_out(fake, config.seed)
    fp, cached = train_fingerprint(
        name,
        real_fit,
        fake_fit,
        config,
        store,
        device,
        progress=progress,
        residual_progress=residual_progress,
        reference_real=reference_pool.images if reference_pool is not None else (),
    )
    files = store.save_held_out(name, real_test, fake_test) if real_test and fake_test else {}
    metrics = finish_training(fp, (real_test, fake_test, files), reference_pool, store, device)
    return {"fingerprint": fp, "cached": cached, "test_metrics": metrics, "warnings": card_warnings(fp)}


def _usable(images: list[LoadedImage], config: TrainConfig, skipped: list[str]) -> list[LoadedImage]:
    """Drop (and report) images smaller than the crop unless padding was asked for."""
    if config.pad:
        return images
    keep = []
    for im in images:
        h, w = im.pixels.shape[:2]
        if h < config.crop or w < config.crop:
            skipped.append(f"{im.source}: image is {w}x{h}, smaller than the {config.crop}x{config.crop} crop")
        else:
            keep.append(im)
    return keep
