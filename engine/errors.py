"""One error family so callers (CLI, dashboard) can show a single readable line."""

from __future__ import annotations


class DifError(Exception):
    """Base of every error the project raises on purpose; its message is one user-facing line."""


class ImageLoadError(DifError):
    """An input could not be read as an image; the message names the file and the problem."""

    def __init__(self, source: str, problem: str):
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")


class StoreError(DifError):
    """A stored artefact is missing, corrupt or refused (never silently used)."""


class ConfigError(DifError):
    """Arguments or a configuration that cannot work (e.g. too few images for the split)."""
