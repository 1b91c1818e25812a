"""Running one training job in the page: residual and step progress, the live plot of the batch means, cancel.

Cancel works the Streamlit way: pressing the button asks for a rerun, and Streamlit stops the
running script at its next page update, which is inside our progress callback, so the engine
never reaches ``store.save``. The callback also returns False when the session's cancel flag is
set, which the engine turns into ``TrainingCancelled``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import streamlit as st
import torch

from engine.api import train_from_folders, train_from_images
from engine.data.images import LoadedImage
from engine.data.reference_pool import cached_default_pool
from engine.errors import ConfigError
from engine.method.config import TrainConfig
from engine.method.dif import TrainingCancelled, TrainProgress
from engine.method.registry import get_method
from engine.storage.fingerprint import Fingerprint
from engine.storage.store import Store


def estimate_seconds(store: Store, config: TrainConfig) -> tuple[float, int] | None:
    """(seconds for ``config.steps`` steps, models it is based on), scaled from the DIF models this
    store trained (fit time per step per batch pixel); None when there are none to time it by."""
    if not get_method(config.method).learned:
        return None
    rates = []
    for _, fp, _ in store.scan():
        cfg = fp.config if fp is not None else {}
        if (
            fp is None
            or not get_method(fp.method).learned
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
        self.rows.append(
            {"step": p.step, "batch mean rho, real": p.batch_mu_real, "batch mean rho, generated": p.batch_mu_fake}
        )
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
            notes = st.session_state.setdefault("tr_notes", [])
            notes.extend(f"skipped {line}" for line in result["skipped"])
            notes.extend(f"warning: {line}" for line in result["warnings"])
            return result["fingerprint"]
        result = train_from_images(
            request.name,
            request.real_images,
            request.fake_images,
            request.config,
            store,
            cached_default_pool(request.config.crop),
            progress=live.step,
            residual_progress=live.residuals,
        )
        if result["cached"]:
            st.info("Same images and settings as a stored model: reused it without training.")
        st.session_state.setdefault("tr_notes", []).extend(f"warning: {line}" for line in result["warnings"])
        return result["fingerprint"]
    except TrainingCancelled:
        raise ConfigError("training cancelled; nothing was stored") from None
