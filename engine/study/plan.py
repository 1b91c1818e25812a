"""What one model of a study will train on, decided on the driver before any task runs.

The selection is ``dif train``'s (``engine.api.train_from_folders``): group-aware seeded halves of
each folder, N + N of the train halves to fit, the rest of them (up to MAX_CALIBRATION) to
calibrate, else a quarter of the fit images carved out. Knowing the exact images on the driver
gives the train key before any work, so a rerun skips every model already in the store.
tests/test_study.py checks that this plan yields the train key ``dif train`` stores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.api import (
    MAX_CALIBRATION,
    MIN_CALIBRATION,
    Calibration,
    _usable,
    carve_calibration,
    split_folder,
    train_key,
)
from engine.data.images import LoadedImage, load_images
from engine.data.splits import take
from engine.errors import DifError
from engine.method.registry import get_method
from engine.residuals.registry import get_extractor
from engine.study.spec import ModelSpec


@dataclass
class Plan:
    """The images of one model by role, its train key, and why files were skipped."""

    spec: ModelSpec
    fit_real: list[LoadedImage]
    fit_fake: list[LoadedImage]
    calibration: Calibration | None
    test_real: list[LoadedImage]
    test_fake: list[LoadedImage]
    key: str
    skipped: list[str] = field(default_factory=list)

    def train_images(self) -> list[LoadedImage]:
        """Every image a fingerprint task needs (fit and calibration)."""
        cal = list(self.calibration[0]) + list(self.calibration[1]) if self.calibration else []
        return self.fit_real + self.fit_fake + cal


def plan_model(spec: ModelSpec) -> Plan:
    """Split, select and load ``spec``'s images exactly as ``dif train`` does; DifError on a bad folder."""
    config = spec.config
    real_train, real_test = split_folder(spec.real, config.seed)
    fake_train, fake_test = split_folder(spec.generated, config.seed)
    real_fit_files = take(real_train, spec.train_size, config.seed)
    fake_fit_files = take(fake_train, spec.train_size, config.seed)
    real_cal_files = take([f for f in real_train if f not in set(real_fit_files)], MAX_CALIBRATION, config.seed)
    fake_cal_files = take([f for f in fake_train if f not in set(fake_fit_files)], MAX_CALIBRATION, config.seed)
    skipped: list[str] = []

    def load(files: list[Path]) -> list[LoadedImage]:
        images, bad = load_images(files, crop=None)
        skipped.extend(str(e) for e in bad)
        return _usable(images, config, skipped)

    fit_real, fit_fake = load(real_fit_files), load(fake_fit_files)
    calibration: Calibration | None = None
    if len(real_cal_files) >= MIN_CALIBRATION and len(fake_cal_files) >= MIN_CALIBRATION:
        cal_real, cal_fake = load(real_cal_files), load(fake_cal_files)
        calibration = (cal_real, cal_fake) if len(cal_real) >= 2 and len(cal_fake) >= 2 else None
    if not fit_real or not fit_fake:
        raise DifError(f"{spec.real if not fit_real else spec.generated}: no usable training images")
    if calibration is None and get_method(config.method).learned:  # what train_fingerprint would carve itself
        fit_real, fit_fake, calibration = carve_calibration(fit_real, fit_fake, config.seed)
    ext_id = get_extractor(config.extractor, _cpu()).cache_id
    key = train_key(fit_real, fit_fake, config, ext_id, calibration)
    return Plan(spec, fit_real, fit_fake, calibration, load(real_test), load(fake_test), key, skipped)


def _cpu():
    import torch

    return torch.device("cpu")
