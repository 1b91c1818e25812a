"""The engine's public functions: train, store, detect, evaluate. The CLI and dashboard call these only."""
from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from engine.calibration import calibrate, from_card
from engine.config import TrainConfig
from engine.denoisers import get_extractor
from engine.detect import correlate, scores_and_decisions
from engine.device import default_device
from engine.errors import ConfigError
from engine.fingerprint import Fingerprint
from engine.images import LoadedImage, center_crop, load_images
from engine.methods import fit, leave_one_out_rho
from engine.metrics import detection_metrics
from engine.names import validate_name
from engine.reference_pool import ReferencePool, pool_id
from engine.residuals import compute_residuals
from engine.splits import split_half, take
from engine.store import Store
from engine.train import ProgressFn
from engine.watermark_match import marked_copies, survey

ALGORITHM_VERSION = "dif-lineage-train-1"
ResidualProgress = Callable[[int, int], None]


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


def train_key(real: Sequence[LoadedImage], fake: Sequence[LoadedImage], config: TrainConfig, extractor_id: str) -> str:
    """Content hash of (training files' bytes, config): the identity of a training run."""
    payload = {
        "real": sorted(im.sha256 for im in real),
        "fake": sorted(im.sha256 for im in fake),
        "config": config.to_dict(),
        "extractor_id": extractor_id,
        "algorithm": ALGORITHM_VERSION,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


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
) -> tuple[Fingerprint, bool]:
    """Train (or fetch from the store) the fingerprint of ``fake`` against ``real``.

    Returns (fingerprint, cache_hit). The fingerprint is saved under ``name`` when a store is given.
    """
    validate_name(name)
    if not real or not fake:
        raise ConfigError("training needs at least one real and one generated image")
    device = device or default_device()
    ext = get_extractor(config.extractor, device)
    key = train_key(real, fake, config, ext.cache_id)
    if store is not None and reuse:
        hit = store.find_by_train_key(key)
        if hit is not None:
            if hit.name != name or (metadata and metadata != hit.metadata):
                hit.name = name
                if metadata:
                    hit.metadata = dict(metadata)
                store.save(hit)
            return hit, True
    total = len(real) + len(fake)

    def combined(done: int, _n: int, offset: int = 0) -> None:
        if residual_progress:
            residual_progress(offset + done, total)

    real, watermark = match_watermark(real, fake, config)
    res_real = residuals_of(real, config.extractor, config.crop, config.border, store, device, config.pad, lambda d, n: combined(d, n, 0))
    res_fake = residuals_of(fake, config.extractor, config.crop, config.border, store, device, config.pad, lambda d, n: combined(d, n, len(real)))
    result = fit(config.method, res_real, res_fake, config, device, progress)
    fp = Fingerprint(
        name=name,
        method=config.method,
        tensor=result.tensor,
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
    rho = correlate([fp], torch.cat([res_real, res_fake]))[:, 0]
    rho_real, rho_fake = rho[: len(real)], rho[len(real) :]
    if config.method != "dif" and len(fake) > 1:
        # a mean fingerprint contains each training image: score each one against the mean of the others
        rho_fake = leave_one_out_rho(fp.method, fp.tensor, res_fake, fp.correlation).double().numpy()
    fp.mu_real, fp.mu_fake = float(rho_real.mean()), float(rho_fake.mean())
    fp.train_rho_real, fp.train_rho_fake = rho_real.astype(np.float32), rho_fake.astype(np.float32)
    fp.train_metrics = metrics_from_rho(fp, rho_real, rho_fake)
    if len(rho_real) >= 2 and len(rho_fake) >= 2:
        fp.calibration = calibrate(rho_real, rho_fake, source="training").to_dict()
    if store is not None:
        store.save(fp)
    return fp, False


def match_watermark(real: Sequence[LoadedImage], fake: Sequence[LoadedImage], config: TrainConfig) -> tuple[list[LoadedImage], dict]:
    """Watermark-matched training: mark the real images when the generated ones carry a known watermark.

    Returns the real images to train on and the card's ``watermark`` record (survey and decision).
    """
    if not config.watermark_match:
        return list(real), {"matched": False, "reason": "turned off (watermark_match=False)"}
    found = survey(fake)
    if found.generator is None:
        return list(real), {"matched": False, "survey": found.to_dict(), "reason": "no known watermark in the generated training images"}
    return marked_copies(real), {"matched": True, "survey": found.to_dict(), "reason": f"{found.marked}/{found.checked} generated training images carry the {found.generator} watermark; it was embedded into the real training images"}


def metrics_from_rho(fp: Fingerprint, rho_real: np.ndarray, rho_fake: np.ndarray) -> dict:
    rho = np.concatenate([rho_real, rho_fake])
    labels = np.concatenate([np.zeros(len(rho_real)), np.ones(len(rho_fake))])
    scores, preds = scores_and_decisions(fp, rho)
    out = detection_metrics(labels, preds, scores)
    out.update({"mu_real_observed": float(np.mean(rho_real)) if len(rho_real) else None, "mu_fake_observed": float(np.mean(rho_fake)) if len(rho_fake) else None})
    return out


def rho_for(fingerprints: Sequence[Fingerprint], images: Sequence[LoadedImage], store: Store | None = None, device: torch.device | None = None, pad: bool = False, progress: ResidualProgress | None = None) -> np.ndarray:
    """N images x M fingerprints correlations; one residual pass per distinct geometry, not per model."""
    out = np.zeros((len(images), len(fingerprints)))
    groups: dict[tuple[str, int, int], list[int]] = {}
    for j, fp in enumerate(fingerprints):
        groups.setdefault((fp.extractor, fp.crop, fp.border), []).append(j)
    for (extractor, crop, border), idx in groups.items():
        res = residuals_of(images, extractor, crop, border, store, device, pad, progress)
        out[:, idx] = correlate([fingerprints[j] for j in idx], res)
    return out


def evaluate(fp: Fingerprint, real: Sequence[LoadedImage], fake: Sequence[LoadedImage], store: Store | None = None, device: torch.device | None = None) -> dict:
    """Detection metrics of ``fp`` on real and generated images."""
    rho = rho_for([fp], list(real) + list(fake), store, device)[:, 0]
    return metrics_from_rho(fp, rho[: len(real)], rho[len(real) :])


def detect(fp: Fingerprint, images: Sequence[LoadedImage], store: Store | None = None, device: torch.device | None = None, pad: bool = False) -> list[dict]:
    """Per image: rho, signed score and the threshold-free label."""
    rho = rho_for([fp], images, store, device, pad)[:, 0]
    scores, preds = scores_and_decisions(fp, rho)
    cal = from_card(fp.calibration)
    rows = []
    for im, r, s, p in zip(images, rho, scores, preds):
        row = {"file": im.source, "sha256": im.sha256, "rho": float(r), "score": float(s), "label": "generated" if p else "real", "model": fp.name}
        if cal is not None:
            row.update({"confidence": float(cal.confidence(r)), "calibrated": str(cal.verdict(r))})
        rows.append(row)
    return rows


def calibrate_on_pool(fp: Fingerprint, pool: ReferencePool, store: Store | None = None, device: torch.device | None = None,
                      held_out_fake: np.ndarray | None = None) -> Fingerprint:
    """Re-estimate mu_real and the real side of the calibrated band on a broad pool of real photos.

    The generated side stays as measured (held-out rho when given, else training rho). The card
    records the pool (sources, images, scenes) and the mu_real the training photos alone gave.
    """
    pool_images = [im for im in crop_images(pool.images, fp.crop, pad=False) if im.pixels.shape[:2] == (fp.crop, fp.crop)] if pool.images else []
    if len(pool_images) < 2:
        return fp
    rho_pool = rho_for([fp], pool_images, store, device)[:, 0]
    fake_side = fp.train_rho_fake.astype(np.float64) if held_out_fake is None else held_out_fake
    training_mu = fp.reference_pool.get("mu_real_training", fp.mu_real)
    fp.mu_real = float(rho_pool.mean())
    if len(fake_side) >= 2:
        fp.calibration = calibrate(rho_pool, fake_side, source="reference-pool").to_dict()
    fp.reference_pool = {**pool.summary(), "pool_id": pool_id(pool), "mu_real_training": float(training_mu), "mu_real_pool": float(rho_pool.mean()),
                         "sd_real_pool": float(rho_pool.std())}
    return fp


def split_folder(folder: str | Path, seed: int) -> tuple[list[Path], list[Path]]:
    """Group-aware seeded halves of the images under ``folder``."""
    from engine.images import list_images

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
    """The ``dif train`` contract: split each folder in halves, train on N + N, test on the held-out halves.

    With a ``reference_pool``, mu_real and the real side of the band come from the pool before the
    held-out halves are scored, so the held-out real accuracy is a false-positive rate on scenes that
    neither training nor calibration saw.
    """
    real_train_files, real_test_files = split_folder(real_dir, config.seed)
    fake_train_files, fake_test_files = split_folder(fake_dir, config.seed)
    real_train_files = take(real_train_files, train_size, config.seed)
    fake_train_files = take(fake_train_files, train_size, config.seed)
    real_train, bad1 = load_images(real_train_files, crop=None, strict=strict)
    fake_train, bad2 = load_images(fake_train_files, crop=None, strict=strict)
    skipped = [str(e) for e in bad1 + bad2]
    real_train = _usable(real_train, config, skipped)
    fake_train = _usable(fake_train, config, skipped)
    fp, cached = train_fingerprint(name, real_train, fake_train, config, store, device, progress, residual_progress, metadata)
    result = {"fingerprint": fp, "cached": cached, "skipped": skipped, "test_metrics": None}
    if evaluate_test:
        real_test, bad3 = load_images(real_test_files, crop=None, strict=strict)
        fake_test, bad4 = load_images(fake_test_files, crop=None, strict=strict)
        skipped += [str(e) for e in bad3 + bad4]
        real_test = _usable(real_test, config, skipped)
        fake_test = _usable(fake_test, config, skipped)
        rho = rho_for([fp], list(real_test) + list(fake_test), store, device)[:, 0]
        rho_r, rho_f = rho[: len(real_test)], rho[len(real_test) :]
        before = metrics_from_rho(fp, rho_r, rho_f) if reference_pool is not None else None
        if reference_pool is not None:
            calibrate_on_pool(fp, reference_pool, store, device, held_out_fake=rho_f if len(rho_f) >= 2 else None)
        metrics = metrics_from_rho(fp, rho_r, rho_f)
        if before is not None:
            metrics.update({"accuracy_training_mu_real": before["accuracy"], "acc_real_training_mu_real": before["acc_real"]})
        if reference_pool is None and len(rho_r) >= 2 and len(rho_f) >= 2:
            # held-out calibration: the test halves are never used to fit the fingerprint
            fp.calibration = calibrate(rho_r, rho_f, source="held-out").to_dict()
        cal = from_card(fp.calibration)
        if cal is not None and len(rho_r) and len(rho_f):
            v_r, v_f = cal.verdict(rho_r), cal.verdict(rho_f)
            metrics.update({"fpr_real_at_level": float(np.mean(v_r == "generated")), "inconclusive_real": float(np.mean(v_r == "inconclusive")), "inconclusive_fake": float(np.mean(v_f == "inconclusive"))})
        fp.test_metrics = metrics
        fp.test_files = {"real": [im.source for im in real_test], "fake": [im.source for im in fake_test]}
        if store is not None:
            store.save(fp)
        result["test_metrics"] = metrics
    elif reference_pool is not None:
        calibrate_on_pool(fp, reference_pool, store, device)
        if store is not None:
            store.save(fp)
    return result


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
