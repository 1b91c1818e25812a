"""Share: a Lineage view saved in the store under a random id, reopened with ``?report=ID``.

The payload holds everything needed to redraw the same graph without recomputing (models,
thresholds, metadata and the cross-detection matrix), so a teammate sees exactly what was shared
even after the models change.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from engine.errors import StoreError
from engine.storage.store import Store

REPORT_VERSION = 1


def new_report_id() -> str:
    """12 hex characters: valid as a name, unguessable enough for a team server."""
    return secrets.token_hex(6)


def save_view(
    store: Store, models: list[str], params: dict[str, Any], metadata: dict[str, dict], cross: dict[str, Any]
) -> str:
    """Store the view and return its id."""
    report_id = new_report_id()
    payload = {
        "kind": "lineage-view",
        "version": REPORT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "models": list(models),
        "params": dict(params),
        "metadata": metadata,
        "cross": cross,
    }
    store.save_report(report_id, payload)
    return report_id


def load_view(store: Store, report_id: str) -> dict[str, Any]:
    """The saved view; StoreError with one line when it is missing or not a lineage view."""
    payload = store.load_report(report_id)
    if payload.get("kind") != "lineage-view" or not isinstance(payload.get("cross"), dict):
        raise StoreError(f"report {report_id!r} is not a lineage view")
    return payload
