"""The work a study sends to workers: residual batches and fingerprint fits.

Both run unchanged in-process (sequential backend) or as Ray tasks, and both set torch's thread
count to the task's CPUs first: the same threads give the same bytes on either backend. Neither
touches the store: they return bytes (residuals as float16, fingerprints in their file format) and
the driver writes them. Images arrive as file bytes (``{source: bytes}``) or, on a shared file
system, as paths (``{source: None}``); either way they are decoded here under their driver path,
so a fingerprint records the same sources wherever it was fitted.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Iterator

import torch

from engine.api import crop_images, train_fingerprint
from engine.data.images import LoadedImage, load_image
from engine.device import default_device
from engine.errors import DifError
from engine.method.config import TrainConfig
from engine.residuals.compute import compute_residuals
from engine.residuals.registry import get_extractor

Blob = dict[str, bytes | None]  # source path -> file bytes (None: read the path, shared file system)


@contextlib.contextmanager
def task_threads(n: int) -> Iterator[None]:
    """Run with ``n`` torch threads, restoring the caller's count after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ResidualDict(dict):
    """A dict with the ``get``/``set`` pair compute_residuals expects of a cache."""

    def set(self, key: str, value: bytes) -> None:
        self[key] = value


class TaskStore:
    """What a fitting task sees of the store: the residuals the driver gathered, read-only.

    ``train_fingerprint`` reads residuals through ``store.residuals`` and ends with ``store.save``;
    here the read hits the gathered residuals and the save keeps the result for the driver.
    """

    def __init__(self, residuals: dict[str, bytes]):
        self.residuals = ResidualDict(residuals)
        self.saved: Any = None

    def save(self, fp: Any) -> None:
        self.saved = fp


def decode(sources: list[str], blobs: list[Blob]) -> list[LoadedImage]:
    """The images named ``sources``, from the first blob holding each (bytes, or the shared path)."""
    out = []
    for src in sources:
        blob = next(b for b in blobs if src in b)
        data = blob[src]
        out.append(load_image(data if data is not None else src, crop=None, name=src))
    return out


@dataclass(frozen=True)
class ResidualBatch:
    """Images of one geometry whose residuals are not in the store yet."""

    extractor: str
    crop: int
    border: int
    pad: bool
    sources: tuple[str, ...]


def residual_task(batch: ResidualBatch, num_cpus: int, *blobs: Blob) -> dict[str, bytes]:
    """Residual key -> float16 bytes for every image of ``batch`` (the store's own cache format)."""
    with task_threads(num_cpus):
        images = crop_images(decode(list(batch.sources), list(blobs)), batch.crop, batch.pad)
        out = ResidualDict()
        compute_residuals(images, get_extractor(batch.extractor, default_device()), batch.border, cache=out)
        return dict(out)


@dataclass(frozen=True)
class FitJob:
    """One fingerprint to fit: its images by role (sources) and its settings."""

    name: str
    config: TrainConfig
    metadata: dict
    fit_real: tuple[str, ...]
    fit_fake: tuple[str, ...]
    cal_real: tuple[str, ...] | None
    cal_fake: tuple[str, ...] | None


def fit_task(job: FitJob, num_cpus: int, n_blobs: int, *parts: Any) -> dict[str, Any]:
    """Fit one fingerprint; ``parts`` are ``n_blobs`` image blobs, then residual dicts.

    Returns the fingerprint file's bytes (or a one-line error) with where and how long it ran; a
    failing model is reported, never raised, so it cannot stop the others.
    """
    start = time.time()
    where = {"host": socket.gethostname(), "pid": os.getpid()}
    try:
        blobs, residual_parts = list(parts[:n_blobs]), parts[n_blobs:]
        residuals: dict[str, bytes] = {}
        for part in residual_parts:
            residuals.update(part)
        with task_threads(num_cpus):
            real, fake = decode(list(job.fit_real), blobs), decode(list(job.fit_fake), blobs)
            cal = (
                (decode(list(job.cal_real), blobs), decode(list(job.cal_fake), blobs))
                if job.cal_real is not None
                else None
            )
            view = TaskStore(residuals)
            fp, _ = train_fingerprint(
                job.name,
                real,
                fake,
                job.config,
                view,
                default_device(),
                metadata=job.metadata,  # type: ignore[arg-type]
                reuse=False,
                calibration=cal,
            )
        return {"fingerprint": fp.to_bytes(), "seconds": round(time.time() - start, 3), **where}
    except Exception as exc:  # one model's failure is a line in the summary
        text = next((ln for ln in str(exc).splitlines() if ln.strip()), "")
        line = text if isinstance(exc, DifError) and text else f"{type(exc).__name__}: {text}"
        return {"error": line[:300], "seconds": round(time.time() - start, 3), **where}
