"""The case report (``dif attribute --report FILE``) and the headline facts behind it, on the tiny store."""

from __future__ import annotations

import hashlib
import html
import re

import pytest

from engine.cli.main import main

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    from test_dashboard import shared_tiny_store

    return shared_tiny_store(tmp_path_factory)


def test_attribute_report_is_one_self_contained_page(tiny_store, tmp_path, capsys):
    from engine import __version__

    images = [sorted(tiny_store["fake_dirs"][m].glob("*.png"))[-1] for m in ("gen0", "gen1")] + [
        sorted(tiny_store["real"].glob("*.png"))[0]
    ]
    report = tmp_path / "case.html"
    code = main(["attribute", *map(str, images), "--report", str(report), "--cache", str(tiny_store["store"])])
    assert code == 0
    page = report.read_text(encoding="utf-8")
    assert (
        page.startswith("<!doctype html>") and "<script" not in page and "src=" not in page
    )  # opens anywhere, offline
    for path in images:
        assert html.escape(str(path)) in page and hashlib.sha256(path.read_bytes()).hexdigest() in page
    assert f"engine {__version__}" in page
    models = re.search(r"<h2>Models compared</h2>(.*?)</table>", page, re.S).group(1)
    assert all(name in models for name in tiny_store["names"]) and "held-out accuracy" in models
    assert "from gen1" in page  # the gen1 image's verdict, with its confidence
    assert re.search(r"from gen1, confidence \d\.\d\d", page)
    assert "wrote case report" in capsys.readouterr().err


def test_report_to_an_unwritable_place_is_one_line(tiny_store, tmp_path, capsys):
    image = sorted(tiny_store["fake_dirs"]["gen1"].glob("*.png"))[0]
    target = tmp_path / "no-such-dir" / "case.html"
    code = main(["attribute", str(image), "--report", str(target), "--cache", str(tiny_store["store"])])
    err = capsys.readouterr().err
    assert code != 0 and str(target) in err and "cannot write the case report" in err and "Traceback" not in err


def test_summary_flags_inconclusive_and_unknown(tiny_store):
    """The three states of the headline, from real attributions of the tiny store's models."""
    from engine.data.images import load_image
    from engine.lineage.attribution import attribute
    from engine.lineage.case_report import summarise
    from engine.storage.store import Store

    with Store(tiny_store["store"]) as store:
        fps = [store.load(n) for n in tiny_store["names"]]
        gen1 = load_image(sorted(tiny_store["fake_dirs"]["gen1"].glob("*.png"))[-1], crop=None)
        (result,) = attribute([gen1], fps, store)
    v = summarise(result)
    assert v.status == "attributed" and v.model == "gen1" and v.confidence is not None
    result.ranking[0]["calibrated"] = "inconclusive"  # the engine's 3-way verdict for the top model
    v = summarise(result)
    assert v.status == "inconclusive" and v.headline().startswith("inconclusive: leans to gen1")
    result.verdict = "unknown"
    v = summarise(result, ["provenance says Stable Diffusion, but the fingerprint recognises no known model (unknown)"])
    assert (
        v.headline().startswith("unknown") and "provenance disagrees: provenance says Stable Diffusion" in v.headline()
    )
