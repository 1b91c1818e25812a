"""Process-wide resources shared by every browser session: one Store and a memo of heavy results.

Streamlit runs each session's script in its own thread of one process, so the store is opened once
(``st.cache_resource``) and heavy results are memoised in a small process-wide table keyed by the
models' train keys: two sessions asking for the same matrix compute it once, and a model retrained
under the same name gets a new key, so nothing stale is ever shown.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any, Callable

import streamlit as st

from engine.storage.store import Store, default_root


def store_root() -> str:
    """The store directory this process serves (``DIF_CACHE_DIR`` or the checkout's ``cache/``)."""
    return str(default_root())


@st.cache_resource(show_spinner=False)
def _open_store(root: str) -> Store:
    return Store(root)


def get_store() -> Store:
    """The one Store of this process for the configured root."""
    return _open_store(store_root())


def demo_enabled() -> bool:
    """``dif serve --no-demo`` sets DIF_DEMO=0; everything else opens on the demo zoo."""
    return os.environ.get("DIF_DEMO", "1") != "0"


def server_paths_allowed() -> bool:
    """Server-side folder paths are offered only when the server is bound to loopback (set by ``dif serve``)."""
    return os.environ.get("DIF_SERVER_PATHS", "1") == "1"


class Memo:
    """A small thread-safe LRU table of computed results (process-wide, shared by sessions)."""

    def __init__(self, size: int = 16):
        self.size = size
        self.lock = threading.Lock()
        self.items: OrderedDict[tuple, Any] = OrderedDict()

    def get_or_compute(self, key: tuple, compute: Callable[[], Any]) -> Any:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = compute()  # outside the lock: a slow job must not freeze other sessions' pages
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value

    def peek(self, key: tuple) -> Any | None:
        with self.lock:
            return self.items.get(key)


@st.cache_resource(show_spinner=False)
def memo(kind: str) -> Memo:
    """The process-wide memo table for one kind of result (e.g. ``"cross"``)."""
    return Memo()
