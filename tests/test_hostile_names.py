"""Hostile model names and report ids never become paths: refused with one line, nothing written anywhere.

Covers engine.storage.names.validate_name, the Store (models and reports) and the dashboard's ``?report=`` link.
Non-UTF-8 names arrive as ``os.fsdecode`` surrogate-escaped text, the way argv and file names do.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.errors import ConfigError, DifError
from engine.storage.names import validate_name
from engine.storage.store import Store

HOSTILE = [
    "../x",
    "../../etc/passwd",
    "..",
    ".",
    "a..b",
    "a/b",
    "/abs",
    "a\\b",
    "x\x00y",
    "\x00",
    "n" * 1000,
    "n" * 65,
    os.fsdecode(b"caf\xe9"),
    os.fsdecode(b"\xff\xfe/../x"),
    "caf\u00e9",
    "x\nforged: line",
    " x",
    "-rf",
    "",
]


def _tree(root: Path, skip: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if skip not in p.parents and p != skip}


@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
def test_validate_name_refuses_with_one_line(name):
    with pytest.raises(ConfigError) as info:
        validate_name(name, "model")
    message = str(info.value)
    assert message.startswith("model: invalid name") and "\n" not in message and "\x00" not in message
    assert len(message) < 300
    message.encode("utf-8")  # printable anywhere: surrogates are shown escaped, never passed through


def test_non_text_names_are_refused():
    for value in (None, 5, b"bytes", ["a"]):
        with pytest.raises(ConfigError, match="must be text"):
            validate_name(value)


def test_store_never_turns_a_hostile_name_into_a_path(tmp_path, monkeypatch):
    """Every store entry point refuses; afterwards nothing exists outside the store and the store is empty."""
    work = tmp_path / "work" / "deeper"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)  # a name used as a relative path would land next to or above this
    root = tmp_path / "store"
    refused = 0
    with Store(root) as store:
        store.save_report("control-1", {"ok": True})  # the same calls with a valid id do work
        before = _tree(tmp_path, root)
        for name in HOSTILE:
            for call in (
                lambda: store.save_report(name, {"models": ["x"]}),
                lambda: store.load_report(name),
                lambda: store.load(name),
                lambda: store.raw(name),
                lambda: store.exists(name),
                lambda: store.delete(name),
                lambda: store.export(name, tmp_path / "out.dif"),
            ):
                with pytest.raises(DifError):
                    call()
                refused += 1
        assert list(store.reports.iterkeys()) == ["report:control-1"]
        assert store.names() == []
        assert store.load_report("control-1") == {"ok": True}
    assert _tree(tmp_path, root) == before
    assert all(p.resolve().is_relative_to(root.resolve()) for p in root.rglob("*"))
    print(
        f"\nhostile names: {len(HOSTILE)} names x 7 store calls, {refused} refused, 0 paths created outside the store"
    )


# a NUL, '../', slashes, 1000 characters, and what the server makes of non-UTF-8 URL bytes (U+FFFD)
REPORT_IDS = ["../../etc/passwd", "a/b/../c", "x\x00y", "r" * 1000, "caf\ufffd"]


def test_dashboard_report_link_with_hostile_id_is_one_error(tmp_path, monkeypatch):
    from test_dashboard import app_on

    monkeypatch.setenv("DIF_CACHE_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("DIF_DEMO", "0")
    for report_id in REPORT_IDS:
        at = app_on(query={"report": report_id})
        assert not at.exception, (report_id, [e.value for e in at.exception])
        assert at.title[0].value == "Lineage"
        assert len(at.error) == 1 and "invalid name" in at.error[0].value, (report_id, [e.value for e in at.error])
        assert "\x00" not in at.error[0].value and len(at.error[0].value) < 300
    assert not any((tmp_path / "store").rglob("*etc*"))
    with Store(tmp_path / "store") as store:
        assert list(store.reports.iterkeys()) == []
