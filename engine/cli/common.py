"""What every command group shares: the store option, JSON output, progress bars, rounding."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm


class ProgressBar:
    """A tqdm bar on stderr driven by ``update(done, total)`` callbacks, the shape the engine reports in."""

    def __init__(self, label: str, enabled: bool = True):
        self.label, self.enabled = label, enabled
        self._bar: tqdm | None = None

    def update(self, done: int, total: int, extra: str = "") -> None:
        if not self.enabled:
            return
        if self._bar is None or self._bar.total != total or done < self._bar.n:
            self.close()  # a new stage (or a restart) gets a fresh bar
            self._bar = tqdm(total=total, desc=self.label, file=sys.stderr, mininterval=0.2, dynamic_ncols=True)
        if extra:
            self._bar.set_postfix_str(extra, refresh=False)
        self._bar.update(done - self._bar.n)
        if done >= total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def progress_bar(label: str) -> ProgressBar:
    """A bar that draws only when stderr is a terminal."""
    return ProgressBar(label, sys.stderr.isatty())


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", help="store directory (default: $DIF_CACHE_DIR or ./cache)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def add_table_format(p: argparse.ArgumentParser) -> None:
    """``--json`` or ``--csv`` (one of them) for a command that prints a table."""
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--csv", action="store_true")


def open_store(args):
    """The store named by ``--cache``, else the default one."""
    from engine.storage.store import Store

    return Store(args.cache) if getattr(args, "cache", None) else Store()


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False, default=_json_default))


def _json_default(obj: Any):
    import numpy as np

    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(type(obj).__name__)


def round_metrics(metrics: dict | None, digits: int = 4) -> dict:
    return {k: (round(v, digits) if isinstance(v, float) else v) for k, v in (metrics or {}).items()}


OFFSETS_HELP = (
    "also read an image whose 8-pixel pattern sits off the crop's grid (shifted, cropped at an offset) with the "
    "model's offset reading (phase), whose cut shares the card's false-positive budget (default: on; "
    "--no-offsets reads every image at the crop's grid only, as releases before did; docs/RESULTS.md)"
)
