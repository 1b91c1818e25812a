"""Cross-detection: how well each model's detector flags every other model's held-out images.

C[i][j] is the balanced accuracy of detector i on test set j (j's generated test images plus j's
held-out real images); the diagonal is ordinary detection. Each image is read as ``dif detect`` reads
it (a JPEG with the model's JPEG reading). Related generators (checkpoints,
fine-tunes) share much of their fingerprint, so their detectors flag each other's images.

Cost: each distinct test image is loaded once, its residual computed once per geometry (and cached
in the store), and correlated with all M fingerprints in one matrix product, so M models cost O(M)
residual passes, not O(M^2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from engine.data.images import LoadedImage, load_image
from engine.errors import ConfigError, ImageLoadError
from engine.storage.fingerprint import Fingerprint
from engine.storage.store import Store

TestSets = dict[str, tuple[list[LoadedImage], list[LoadedImage]]]


@dataclass
class CrossResult:
    """The M x M cross-detection matrices; rows are detectors, columns are test sets."""

    names: list[str]
    accuracy: np.ndarray  # [i][j] balanced accuracy of detector i on test set j (NaN: j's images smaller than i's crop)
    acc_fake: np.ndarray  # fraction of j's generated test images flagged by i
    mean_rho_fake: np.ndarray  # mean correlation of j's generated test images with fingerprint i (as read)
    mean_rho_real: np.ndarray  # mean correlation of j's real test images with fingerprint i (as read)
    n_test: list[int]  # images in test set j (real + generated)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """JSON-able form (nested lists)."""
        return {
            "names": list(self.names),
            "accuracy": _json_matrix(self.accuracy),
            "acc_fake": _json_matrix(self.acc_fake),
            "mean_rho_fake": _json_matrix(self.mean_rho_fake),
            "mean_rho_real": _json_matrix(self.mean_rho_real),
            "n_test": [int(n) for n in self.n_test],
            "seconds": float(self.seconds),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "CrossResult":
        try:
            names = [str(n) for n in d["names"]]
            arrays = {
                k: np.array([[np.nan if v is None else v for v in row] for row in d[k]], dtype=float).reshape(
                    len(d[k]), -1
                )
                for k in ("accuracy", "acc_fake", "mean_rho_fake", "mean_rho_real")
            }
            n_test = [int(n) for n in d["n_test"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"not a cross-detection result ({type(exc).__name__}: {exc})") from None
        m = len(names)
        for key, arr in arrays.items():
            if arr.shape != (m, m):
                raise ConfigError(f"cross-detection {key} has shape {arr.shape}, expected ({m}, {m})")
        return cls(names, n_test=n_test, seconds=float(d.get("seconds", 0.0)), **arrays)

    def to_frame(self) -> pd.DataFrame:
        """Accuracy as a DataFrame: index = detector, columns = test set."""
        frame = pd.DataFrame(np.asarray(self.accuracy, dtype=float), index=list(self.names), columns=list(self.names))
        frame.index.name = "detector"
        frame.columns.name = "test set"
        return frame


def _json_matrix(arr: np.ndarray) -> list[list[float | None]]:
    """Nested lists with NaN (no measurement) as None, so the dict is strict JSON."""
    return [[None if np.isnan(v) else float(v) for v in row] for row in np.asarray(arr, dtype=float)]


def load_test_sets(fingerprints: Sequence[Fingerprint]) -> TestSets:
    """Each model's held-out (real, generated) images from ``fp.test_files``; a file shared by several
    models is decoded once."""
    cache: dict[str, LoadedImage] = {}
    out: TestSets = {}
    for fp in fingerprints:
        files = fp.test_files or {}
        real, fake = files.get("real") or [], files.get("fake") or []
        if not real or not fake:
            raise ConfigError(
                f"model {fp.name!r} has no held-out test files (train it with 'dif train' or 'dif demo build' to "
                "record them)"
            )
        sets = []
        for paths in (real, fake):
            images = []
            for path in paths:
                if path not in cache:
                    if not Path(path).exists():
                        raise ConfigError(
                            f"model {fp.name!r}: held-out test file {path} is missing (moved or deleted?)"
                        )
                    try:
                        cache[path] = load_image(path, crop=None)
                    except ImageLoadError as exc:
                        raise ConfigError(f"model {fp.name!r}: held-out test file unreadable: {exc}") from None
                images.append(cache[path])
            sets.append(images)
        out[fp.name] = (sets[0], sets[1])
    return out


def _unique(
    test_sets: TestSets, names: Sequence[str]
) -> tuple[list[LoadedImage], dict[str, tuple[list[int], list[int]]]]:
    """All distinct test images (by content and geometry) and, per model, their row indices."""
    rows: dict[tuple[str, tuple[int, ...]], int] = {}
    images: list[LoadedImage] = []
    index: dict[str, tuple[list[int], list[int]]] = {}

    def row(im: LoadedImage) -> int:
        key = (im.sha256, tuple(im.pixels.shape))
        if key not in rows:
            rows[key] = len(images)
            images.append(im)
        return rows[key]

    for name in names:
        real, fake = test_sets[name]
        index[name] = ([row(im) for im in real], [row(im) for im in fake])
    return images, index


def _rho_where_possible(
    fingerprints: Sequence[Fingerprint], images: Sequence[LoadedImage], store: Store | None, device, progress
) -> np.ndarray:
    """N x M correlations; NaN where an image is smaller than the model's crop (models trained at
    different sizes can share a store: a 64-pixel zoo image says nothing to a 256-pixel detector)."""
    from engine.api import rho_for

    rho = np.full((len(images), len(fingerprints)), np.nan)
    by_crop: dict[int, list[int]] = {}
    for j, fp in enumerate(fingerprints):
        by_crop.setdefault(fp.crop, []).append(j)
    for crop, cols in sorted(by_crop.items()):
        rows = [i for i, im in enumerate(images) if min(im.pixels.shape[:2]) >= crop]
        if rows:
            rho[np.ix_(rows, cols)] = rho_for(
                [fingerprints[j] for j in cols], [images[i] for i in rows], store, device, progress=progress
            )
    return rho


def _read_as_detect_does(
    fingerprints: Sequence[Fingerprint], images: Sequence[LoadedImage], store: Store | None, device, progress
) -> tuple[np.ndarray, np.ndarray]:
    """N x M correlations and decisions, each image read by each model as ``dif detect`` reads it (a
    JPEG with the model's JPEG reading, an off-grid image also with its offset reading), so a cell
    says what a user of that model would see. The
    readings share one residual pass; NaN rho (image smaller than the crop) is never flagged."""
    from engine.api import with_readings
    from engine.method.detect import decide

    readings, choose = with_readings(fingerprints, images)
    rho_all = _rho_where_possible(readings, images, store, device, progress)  # N x (M + extra readings)
    columns = choose(rho_all)
    flagged_all = np.stack(
        [decide(rho_all[:, k], r.mu_real, r.mu_fake, r.threshold) for k, r in enumerate(readings)], axis=1
    )
    pick = np.asarray(columns, dtype=int).reshape(len(images), len(fingerprints))
    rows = np.arange(len(images))[:, None]
    return rho_all[rows, pick], flagged_all[rows, pick]


def cross_detect(
    fingerprints: list[Fingerprint],
    store: Store | None = None,
    device: torch.device | None = None,
    progress: Callable[[int, int], None] | None = None,
    test_sets: TestSets | None = None,
) -> CrossResult:
    """The cross-detection matrices of ``fingerprints`` on their own held-out test sets."""
    import time

    if not fingerprints:
        raise ConfigError("cross-detection needs at least one model")
    names = [fp.name for fp in fingerprints]
    if len(set(names)) != len(names):
        raise ConfigError("cross-detection: the same model name appears twice")
    start = time.time()
    if test_sets is None:
        test_sets = load_test_sets(fingerprints)
    missing = [n for n in names if n not in test_sets]
    if missing:
        raise ConfigError(f"no test set given for {', '.join(missing)}")
    for name in names:
        if not test_sets[name][0] or not test_sets[name][1]:
            raise ConfigError(f"model {name!r}: its test set needs real and generated images")
    images, index = _unique(test_sets, names)
    rho, flagged = _read_as_detect_does(fingerprints, images, store, device, progress)  # N images x M models
    m = len(names)
    acc, acc_fake = np.full((m, m), np.nan), np.full((m, m), np.nan)
    rho_fake, rho_real = np.full((m, m), np.nan), np.full((m, m), np.nan)
    for j, name in enumerate(names):
        real_rows, fake_rows = index[name]
        for i, fp in enumerate(fingerprints):
            r_real, r_fake = rho[real_rows, i], rho[fake_rows, i]
            if np.isnan(r_real).any() or np.isnan(r_fake).any():
                continue  # j's images are smaller than i's crop: no measurement, left NaN
            flagged_real, flagged_fake = flagged[real_rows, i], flagged[fake_rows, i]
            acc_fake[i, j] = flagged_fake.mean()
            acc[i, j] = (acc_fake[i, j] + (1.0 - flagged_real.mean())) / 2.0
            rho_fake[i, j], rho_real[i, j] = r_fake.mean(), r_real.mean()
    n_test = [len(index[n][0]) + len(index[n][1]) for n in names]
    return CrossResult(names, acc, acc_fake, rho_fake, rho_real, n_test, seconds=round(time.time() - start, 3))
