"""DIF Lineage engine: deep image fingerprints, detection, cross-detection and lineage.

The public API is re-exported lazily from the submodules so that ``import engine`` stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"

from engine.errors import ConfigError, DifError, ImageLoadError, StoreError  # noqa: F401
