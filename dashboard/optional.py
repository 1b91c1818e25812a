"""Engine modules that a given install may not have yet (cross-detection, lineage, attribution, zoo).

A page whose module is missing says so in one line instead of failing to import.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def engine_module(name: str) -> ModuleType | None:
    """``engine.<name>`` if it is installed, else None (a broken module still raises)."""
    full = f"engine.{name}"
    try:
        return importlib.import_module(full)
    except ModuleNotFoundError as exc:
        if exc.name == full:
            return None
        raise
