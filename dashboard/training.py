"""Running one training job in the page: residual and step progress, the live mu plot, cancel.

Cancel works the Streamlit way: pressing the button asks for a rerun, and Streamlit stops the
running script at its next page update, which is inside our progress callback, so the engine
never reaches ``store.save``. The callback also returns False when the session's cancel flag is
set, which the engine turns into ``TrainingCancelled``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd
import streamlit as st

from engine.api import calibrate_on_pool, train_fingerprint, train_from_folders
from engine.config import TrainConfig
from engine.errors import ConfigError
from engine.fingerprint import Fingerprint
from engine.images import LoadedImage
from engine.reference_pool import cached_default_pool
from engine.store import Store
from engine.train import TrainingCancelled, TrainProgress


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
            self.step_bar.progress(min(1.0, p.step / max(p.total, 1)), text=f"Step {p.step}/{p.total}, loss {p.loss:.4f}, about {eta:.0f}s left")
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
                request.name, request.real_dir, request.fake_dir, request.config, store=store, progress=live.step, residual_progress=live.residuals,
                reference_pool=cached_default_pool(request.config.crop),
            )
            for line in result["skipped"]:
                st.warning(f"skipped {line}")
            return result["fingerprint"]
        if not request.fake_images or not request.real_images:
            raise ConfigError("upload at least one generated and one real image (or a zip of them)")
        fp, cached = train_fingerprint(
            request.name, request.real_images, request.fake_images, request.config, store=store, progress=live.step, residual_progress=live.residuals
        )
        if cached:
            st.info("Same images and settings as a stored model: reused it without training.")
        # uploads have no held-out split: mu_real and the band come from the reference pool of real photos
        calibrate_on_pool(fp, cached_default_pool(request.config.crop), store)
        store.save(fp)
        return fp
    except TrainingCancelled:
        raise ConfigError("training cancelled; nothing was stored") from None
