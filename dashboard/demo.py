"""Opening on the built-in demo zoo: build it once per process (instant when the store has it)."""
from __future__ import annotations

import streamlit as st

from dashboard.optional import engine_module
from dashboard.state import demo_enabled, get_store, job_lock, memo
from dashboard.ui import guarded


def ensure_demo() -> None:
    """Build the demo zoo with a progress bar the first time any session of this process asks for it.

    One session builds while the others wait on the same lock; afterwards every session skips it.
    """
    if not demo_enabled() or memo("demo").peek(("ready",)):
        return
    zoo = engine_module("zoo")
    if zoo is None:
        return
    store = get_store()
    with guarded("building the demo zoo"):
        lock = job_lock("demo")
        if not lock.acquire(blocking=False):
            with st.spinner("Another session is building the demo zoo; waiting for it..."):
                lock.acquire()
        try:
            if memo("demo").peek(("ready",)):
                return
            box = st.empty()
            bar = box.progress(0.0, text="Preparing the demo zoo...")

            def progress(stage: str, done: int, total: int) -> None:
                bar.progress(min(1.0, done / max(total, 1)), text=f"Demo zoo, {stage}: {done}/{total}")

            zoo.build_demo(store, progress=progress)
            box.empty()
            memo("demo").get_or_compute(("ready",), lambda: True)
        finally:
            lock.release()
