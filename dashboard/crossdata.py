"""Cross-detection and lineage results for the pages, memoised per process by the models' train keys.

The engine caches residuals; on top of that the finished matrix for a given set of models is kept
in a small process-wide table, so revisiting a page, or a second session asking for the same
models, is instant. Progress is shown only when the matrix is actually computed.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Sequence

import streamlit as st

from dashboard.state import get_store, memo, store_root
from engine.errors import ConfigError
from engine.lineage.cross import CrossResult, cross_detect
from engine.lineage.infer import LineageParams, families, infer_lineage
from engine.storage.fingerprint import Fingerprint


def load_models(names: Sequence[str]) -> list[Fingerprint]:
    store = get_store()
    return [store.load(n) for n in names]


def with_test_sets(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """(models with recorded held-out test images, models without): only the first can be cross-detected."""
    store = get_store()
    ok, missing = [], []
    for name in names:
        files = store.load(name).test_files or {}
        (ok if files.get("real") and files.get("fake") else missing).append(name)
    return ok, missing


def left_out_note(missing: Sequence[str]) -> str:
    """The one line a page shows for models it had to leave out of the matrix."""
    return (
        f"Left out: {', '.join(missing)}: no held-out test images recorded (trained from fewer than 8 uploads of each "
        "kind, "
        "or by an older version). Retrain on the Models page (Add a model) with more images to include "
        f"{'it' if len(missing) == 1 else 'them'}."
    )


def cross_for(names: Sequence[str]):
    """CrossResult for ``names`` (in that order), computed once per process per set of trained models."""
    if len(names) < 1:
        raise ConfigError("select at least one model")
    fps = load_models(names)
    key = (store_root(), tuple((fp.name, fp.train_key) for fp in fps))
    table = memo("cross")
    hit = table.peek(key)
    if hit is not None:
        return CrossResult.from_dict(hit)
    box = st.empty()
    bar = box.progress(0.0, text=f"Cross-detection of {len(fps)} models...")

    def progress(*args: Any) -> None:
        done, total = args[-2], args[-1]
        stage = f"{args[0]}: " if len(args) > 2 else ""
        bar.progress(min(1.0, float(done) / max(float(total), 1.0)), text=f"Cross-detection, {stage}{done}/{total}")

    result = table.get_or_compute(key, lambda: cross_detect(fps, store=get_store(), progress=progress).to_dict())
    box.empty()
    return CrossResult.from_dict(result)


def cross_noting_left_out(names: Sequence[str]) -> CrossResult | None:
    """CrossResult of the models among ``names`` with held-out test images (a warning names the others); None
    when none has them. The one way a page turns a selection into a matrix."""
    chosen, missing = with_test_sets(names)
    if missing:
        st.warning(left_out_note(missing))
    return cross_for(chosen) if chosen else None


def default_params() -> dict[str, Any]:
    """The engine's default lineage thresholds as a plain dict."""
    return asdict(LineageParams())


def lineage_graph(cross_result, metadata: dict[str, dict] | None, params: dict[str, Any]):
    return infer_lineage(cross_result, metadata, LineageParams(**params))


def family_groups(cross_result) -> list[list[str]]:
    """Families (as name lists, largest first) under the default thresholds."""
    graph = lineage_graph(cross_result, None, default_params())
    groups = [sorted(group) for group in families(graph)]
    return sorted(groups, key=lambda g: (-len(g), g[0] if g else ""))


def family_order(cross_result) -> list[str]:
    """Model names ordered so that families sit together."""
    order = [n for group in family_groups(cross_result) for n in group]
    rest = [n for n in cross_result.names if n not in order]
    return order + rest
