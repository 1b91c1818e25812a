"""Error display shared by all pages: one readable line in the page, never a traceback."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

import streamlit as st

from engine.errors import DifError

log = logging.getLogger("dif.dashboard")


def error_line(exc: BaseException) -> str:
    """The one line shown for ``exc``: our own messages as they are, anything else with its type."""
    if isinstance(exc, DifError):
        return str(exc)
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"unexpected error ({type(exc).__name__}: {text})" if text else f"unexpected error ({type(exc).__name__})"


@contextmanager
def guarded(what: str) -> Iterator[None]:
    """Run a page section; on failure show ``what: message`` with st.error and let the rest of the page render.

    Streamlit's own control-flow exceptions (rerun, stop) derive from BaseException and pass through.
    """
    try:
        yield
    except Exception as exc:  # UI boundary: the section fails, the page does not
        log.warning("%s failed: %s", what, exc, exc_info=not isinstance(exc, DifError))
        st.error(f"{what}: {error_line(exc)}")
