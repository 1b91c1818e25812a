"""Opening on the built-in demo zoo: built once per process, in a background thread.

The build runs in its own thread, not in a page script, so a page rerun or a closed tab never
interrupts it; every session that opens meanwhile shows the same live progress bar, and once the
zoo is in the store (instant on later starts: ``build_demo`` finds it) the pages render as usual.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import streamlit as st

from dashboard.state import demo_enabled, get_store, store_root
from dashboard.ui import error_line
from engine.zoo.demo import build_demo


@dataclass
class DemoJob:
    """State of the one demo build of this process, written by the worker, read by the pages."""

    stage: str = "starting"
    done: int = 0
    total: int = 1
    error: str | None = None
    finished: threading.Event = field(default_factory=threading.Event)
    seconds: float = 0.0

    def progress(self, stage: str, done: int, total: int) -> None:
        self.stage, self.done, self.total = stage, done, max(total, 1)

    def run(self) -> None:
        start = time.time()
        try:
            build_demo(get_store(), progress=self.progress)
        except Exception as exc:  # reported in the page; the dashboard still serves the store as it is
            self.error = error_line(exc)
        finally:
            self.seconds = time.time() - start
            self.finished.set()


@st.cache_resource(show_spinner=False)
def _demo_job(root: str) -> DemoJob:
    job = DemoJob()
    threading.Thread(target=job.run, name="dif-demo-build", daemon=True).start()
    return job


def ensure_demo(poll: float = 0.5) -> None:
    """Show the build's progress until the demo zoo is in the store (no-op when disabled or done)."""
    if not demo_enabled():
        return
    job = _demo_job(store_root())
    if not job.finished.is_set():
        box = st.empty()
        while not job.finished.wait(poll):
            frac = min(1.0, job.done / job.total)
            box.progress(frac, text=f"Building the demo zoo (first start only), {job.stage}: {job.done}/{job.total}")
        box.empty()
    if job.error:
        st.error(f"demo zoo: {job.error}")
