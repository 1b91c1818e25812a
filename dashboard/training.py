"""Running one training job in the page: residual and step progress, the live mu plot, cancel.

Cancel works the Streamlit way: pressing the button asks for a rerun, and Streamlit stops the
running script at its next page update, which is inside our progress callback, so the engine
never reaches ``store.save``. The callback also returns False when the session's cancel flag is
set, which the engine turns into ``TrainingCancelled``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
import torch
from PIL import Image

from engine.api import calibrate_on_pool, metrics_from_rho, rho_for, train_fingerprint, train_from_folders
from engine.data.images import LoadedImage
from engine.data.reference_pool import cached_default_pool
from engine.data.splits import split_groups
from engine.errors import ConfigError
from engine.method.config import TrainConfig
from engine.method.dif import TrainingCancelled, TrainProgress
from engine.storage.fingerprint import Fingerprint
from engine.storage.store import Store

HOLDOUT_SHARE = 0.25  # of each class's uploads, kept out of training to measure held-out accuracy
MIN_HOLDOUT = 2  # per class; fewer uploads than 2 / HOLDOUT_SHARE per class cannot be checked


def hold_out(images: list[LoadedImage], seed: int) -> tuple[list[LoadedImage], list[LoadedImage]]:
    """(train, held out): whole content groups (tiles of one photo) stay on one side, as in folder training."""
    if len(images) < MIN_HOLDOUT / HOLDOUT_SHARE:
        return list(images), []
    try:
        test, train = split_groups(list(images), seed + 31, HOLDOUT_SHARE, key=lambda im: im.source)
    except ValueError:  # one content group: a seeded share of single images
        order = np.random.default_rng(seed + 31).permutation(len(images))
        n = max(MIN_HOLDOUT, round(HOLDOUT_SHARE * len(images)))
        test, train = [images[i] for i in sorted(order[:n])], [images[i] for i in sorted(order[n:])]
    return (train, test) if len(test) >= MIN_HOLDOUT and train else (list(images), [])


def save_held_out(store: Store, name: str, real: list[LoadedImage], fake: list[LoadedImage]) -> dict[str, list[str]]:
    """Write the held-out uploads (decoded pixels, as PNG named by content hash) under the store, so
    cross-detection and lineage can use them later like a folder-trained model's test files."""
    out: dict[str, list[str]] = {}
    for kind, images in (("real", real), ("fake", fake)):
        folder = Path(store.root) / "heldout" / name / kind
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for im in images:
            path = folder / f"{im.sha256[:24]}.png"
            if not path.exists():
                Image.fromarray(np.ascontiguousarray(im.pixels)).save(path)
            paths.append(str(path))
        out[kind] = paths
    return out


def estimate_seconds(store: Store, config: TrainConfig) -> tuple[float, int] | None:
    """(seconds for ``config.steps`` steps, models it is based on), scaled from the DIF models this
    store trained (fit time per step per batch pixel); None when there are none to time it by."""
    if config.method != "dif":
        return None
    rates = []
    for _, fp, _ in store.scan():
        cfg = fp.config if fp is not None else {}
        if (
            fp is None
            or fp.method != "dif"
            or not fp.seconds
            or not cfg.get("steps")
            or cfg.get("extractor", fp.extractor) != config.extractor
        ):
            continue
        rates.append(fp.seconds / (cfg["steps"] * cfg.get("batch", 1) * fp.crop**2))
    if not rates:
        return None
    return float(np.median(rates)) * config.steps * config.batch * config.crop**2, len(rates)


def time_two_steps(config: TrainConfig) -> float:
    """Seconds per step measured by running 2 steps on random residuals of the configured size."""
    from engine.device import default_device
    from engine.method.registry import fit

    side = config.crop - 2 * config.border
    g = torch.Generator().manual_seed(0)
    real, fake = (
        torch.randn(config.batch, 3, side, side, generator=g),
        torch.randn(config.batch, 3, side, side, generator=g),
    )
    probe = TrainConfig(**{**config.to_dict(), "steps": 2})
    start = time.time()
    fit(config.method, real, fake, probe, default_device())
    return (time.time() - start) / 2


@dataclass
class TrainRequest:
    """What the form collected: a name, a config and either in-memory images or two server folders."""

    name: str
    config: TrainConfig
    fake_images: list[LoadedImage] = field(default_factory=list)
    real_images: list[LoadedImage] = field(default_factory=list)
    fake_dir: str = ""
    real_dir: str = ""

    @property
    def from_folders(self) -> bool:
        return bool(self.fake_dir or self.real_dir)


class LiveProgress:
    """Page elements updated by the engine's callbacks (at most ~5 redraws a second)."""

    def __init__(self) -> None:
        self.residual_bar = st.progress(0.0, text="Residuals...")
        self.step_bar = st.progress(0.0, text="Training...")
        self.chart = st.empty()
        self.rows: list[dict] = []
        self.last = 0.0

    def residuals(self, done: int, total: int) -> None:
        self.residual_bar.progress(min(1.0, done / max(total, 1)), text=f"Residuals {done}/{total}")

    def step(self, p: TrainProgress) -> bool:
        self.rows.append({"step": p.step, "mu_real": p.batch_mu_real, "mu_generated": p.batch_mu_fake})
        now = time.time()
        if p.step >= p.total or now - self.last > 0.2:
            self.last = now
            eta = p.elapsed / max(p.step, 1) * (p.total - p.step)
            self.step_bar.progress(
                min(1.0, p.step / max(p.total, 1)),
                text=f"Step {p.step}/{p.total}, loss {p.loss:.4f}, about {eta:.0f}s left",
            )
            self.chart.line_chart(pd.DataFrame(self.rows).set_index("step"), height=220)
        return not st.session_state.get("tr_cancelled_flag", False)


def run_training(request: TrainRequest, store: Store) -> Fingerprint:
    """Train and store the model; raises ConfigError with one line when cancelled or inputs are unusable."""
    live = LiveProgress()
    try:
        if request.from_folders:
            if not (request.fake_dir and request.real_dir):
                raise ConfigError("give both folders (generated and real)")
            result = train_from_folders(
                request.name,
                request.real_dir,
                request.fake_dir,
                request.config,
                store=store,
                progress=live.step,
                residual_progress=live.residuals,
                reference_pool=cached_default_pool(request.config.crop),
            )
            st.session_state.setdefault("tr_notes", []).extend(f"skipped {line}" for line in result["skipped"])
            return result["fingerprint"]
        if not request.fake_images or not request.real_images:
            raise ConfigError("upload at least one generated and one real image (or a zip of them)")
        real_fit, real_test = hold_out(request.real_images, request.config.seed)
        fake_fit, fake_test = hold_out(request.fake_images, request.config.seed)
        fp, cached = train_fingerprint(
            request.name,
            real_fit,
            fake_fit,
            request.config,
            store=store,
            progress=live.step,
            residual_progress=live.residuals,
        )
        if cached:
            st.info("Same images and settings as a stored model: reused it without training.")
        # mu_real and the band come from the reference pool of real photos
        calibrate_on_pool(fp, cached_default_pool(request.config.crop), store)
        if real_test and fake_test:
            rho = rho_for([fp], real_test + fake_test, store)[:, 0]
            fp.test_metrics = metrics_from_rho(fp, rho[: len(real_test)], rho[len(real_test) :])
            fp.test_files = save_held_out(store, request.name, real_test, fake_test)
        else:
            fp.test_metrics, fp.test_files = {}, {}
        store.save(fp)
        return fp
    except TrainingCancelled:
        raise ConfigError("training cancelled; nothing was stored") from None
