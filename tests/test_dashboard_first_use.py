"""Issue 13, "an analyst's first ten minutes": AppTest checks of each point on real stores made here.

The tiny store (three real fingerprints, see test_dashboard.py) serves most checks; a copy of it
gets a model without held-out images (point 2) or a duplicate model (a guaranteed near-tie), and
the real demo zoo (built in ~10 s) serves the lineage-against-truth check (point 6).
"""

from __future__ import annotations

import io
import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from test_dashboard import app_on, no_errors, tiny  # noqa: F401 (tiny is a fixture)


@pytest.fixture()
def store_copy(tiny, tmp_path, monkeypatch):
    """A private copy of the tiny store (the shared one must keep its three models)."""
    root = tmp_path / "store"
    shutil.copytree(tiny["store"], root)
    monkeypatch.setenv("DIF_CACHE_DIR", str(root))
    return root


def _add_copy(root, source: str, name: str, **changes) -> None:
    from engine.storage.store import Store

    with Store(root) as store:
        fp = store.load(source)
        fp.name = name
        for key, value in changes.items():
            setattr(fp, key, value)
        store.save(fp)


def _upload(at, files) -> None:
    at.file_uploader(key="attr_upload").set_value(files)
    at.run()


def _gen_png(tiny, model: str = "gen1", k: int = -1):
    img = sorted(tiny["fake_dirs"][model].glob("*.png"))[k]
    return img.name, img.read_bytes(), "image/png"


def _frame(at, *columns: str):
    """The first table on the page with these columns (tables have no key AppTest can look up)."""
    for frame in at.dataframe:
        if set(columns) <= set(frame.value.columns):
            return frame.value
    raise AssertionError(f"no table with columns {columns}")


def _served(storages, button) -> bytes:
    url = button.proto.url
    return storages[-1].get_file(url.rsplit("/", 1)[-1]).content


@pytest.fixture()
def recording(monkeypatch):
    """Keep AppTest's media store, so a download button's bytes can be read as the browser gets them."""
    import streamlit.testing.v1.app_test as app_test
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    storages: list = []

    class RecordingStorage(MemoryMediaFileStorage):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            storages.append(self)

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", RecordingStorage)
    return storages


# ------------------------------------------------------------------ point 2
def test_a_model_without_held_out_images_is_left_out_not_fatal(store_copy):
    """Point 2: one upload-trained model without test files used to replace both pages by one error."""
    _add_copy(store_copy, "gen1", "newcomer", test_files={}, test_metrics={})
    for page in ("views/cross.py", "views/lineage.py"):
        at = app_on(page)
        no_errors(at)
        assert len(at.get("plotly_chart")) >= 1, page
        note = [w.value for w in at.warning if "newcomer" in w.value]
        assert note and "Models page" in note[0] and "dif train" not in note[0], page


# ------------------------------------------------------------------ point 3
def test_headline_gives_confidence_and_flags_a_near_tie(tiny, store_copy):
    """Point 3: the verdict carries its calibrated confidence; two models claiming alike are a near-tie."""
    at = app_on("views/attribute.py")
    _upload(at, [_gen_png(tiny)])
    no_errors(at)
    head = [m.value for m in at.markdown if "from **gen1**" in m.value]
    assert head and ("confidence 0." in head[0] or "confidence 1." in head[0]), head
    assert "near-tie" not in head[0]
    _add_copy(store_copy, "gen1", "gen1-twin")  # same fingerprint under another name: margin 0
    at = app_on("views/attribute.py")
    _upload(at, [_gen_png(tiny)])
    no_errors(at)
    head = [m.value for m in at.markdown if m.value.startswith("####")]
    assert any("**near-tie**" in h and "margin 0.000" in h for h in head), head


def test_provenance_disagreement_is_in_the_headline(tiny):
    """Point 3: generation parameters naming Stable Diffusion, fingerprint says gen1: said in the headline."""
    name, data, _ = _gen_png(tiny)
    info = PngImagePlugin.PngInfo()
    info.add_text(
        "parameters", "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Model: stable-diffusion-v1-5"
    )
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).save(buf, format="PNG", pnginfo=info)
    at = app_on("views/attribute.py")
    _upload(at, [("sd-says.png", buf.getvalue(), "image/png")])
    assert not at.exception
    head = [m.value for m in at.markdown if m.value.startswith("#### sd-says.png")]
    assert head and "**provenance disagrees**" in head[0] and "Stable Diffusion" in head[0], head


# ---------------------------------------------------- batch summary, case report, EXIF table, zero-byte upload
def test_batch_summary_csv_case_report_and_empty_file(tiny, recording):
    """Point 7 and What-to-build: 15 images give one summary table (+ CSV, + case report), details one at a
    time; a zero-byte upload is named by its file name."""
    files = [
        (p.name, p.read_bytes(), "image/png")
        for m in ("gen0", "gen1")
        for p in sorted(tiny["fake_dirs"][m].glob("*.png"))[:7]
    ]
    files += [
        ("real.png", sorted(tiny["real"].glob("*.png"))[0].read_bytes(), "image/png"),
        ("empty.png", b"", "image/png"),
    ]
    at = app_on("views/attribute.py")
    _upload(at, files)
    assert not at.exception
    assert [e.value for e in at.error] == ["empty.png: empty file (0 bytes)"]
    table = _frame(at, "file", "verdict")
    assert len(table) == 15 and {"file", "verdict", "confidence", "best model", "margin", "warnings"} <= set(
        table.columns
    )
    assert (table["verdict"].str.startswith("gen1").sum()) >= 5
    assert len([m for m in at.markdown if m.value.startswith("####")]) == 1  # one image's details, not fifteen
    at.download_button(key="attr_csv").click().run()
    csv_text = _served(recording, at.download_button(key="attr_csv")).decode()
    assert csv_text.count("\n") == 16 and "sha256" in csv_text.splitlines()[0]
    at.download_button(key="attr_report").click().run()
    report = _served(recording, at.download_button(key="attr_report")).decode()
    import hashlib

    from engine import __version__

    for name, data, _ in files[:-1]:
        assert name in report and hashlib.sha256(data).hexdigest() in report
    assert f"engine {__version__}" in report and "held-out accuracy" in report and "gen0-ft" in report


def test_exif_is_a_table_and_the_analysed_region_is_named(tiny):
    """EXIF as rows of a table (not JSON); point 5: the caption says which region was analysed."""
    from skimage import data

    img = Image.fromarray(data.astronaut()[:150, :200])
    exif = img.getexif()
    exif[0x0131] = "MyEditor 3.0"
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95, exif=exif)
    at = app_on("views/attribute.py")
    _upload(at, [("edited.jpg", buf.getvalue(), "image/jpeg")])
    assert not at.exception
    rows = _frame(at, "section", "field", "value")
    hit = rows[(rows["section"] == "EXIF") & (rows["field"] == "Software")]
    assert list(hit["value"]) == ["MyEditor 3.0"]
    assert not at.json  # no JSON dump any more
    text = " ".join(str(e.proto) for e in at.get("image"))
    # 150 x 200 holds 2 x 3 crops of 64: six tiles on the 8-pixel grid, averaged
    assert "analysed regions (64x64 at (0, 0), 64x64 at (64, 0), 64x64 at (136, 0), 64x64 at (0, 80)," in text, text[
        :500
    ]
    assert "their correlations are averaged" in text


def test_with_boxes_draws_the_analysed_region():
    from dashboard.figures import with_boxes
    from engine.data.tiles import centre_box

    out = with_boxes(np.zeros((150, 200, 3), np.uint8), [centre_box(150, 200, 64)])
    red = (out[:, :, 0] > 200) & (out[:, :, 1] < 80)
    ys, xs = np.nonzero(red)
    assert (ys.min(), xs.min(), ys.max(), xs.max()) == (43, 68, 43 + 63, 68 + 63)
    assert not red[75, 100]  # the box is an outline: the analysed pixels stay visible


# ------------------------------------------------------------------ point 4
def test_upload_training_holds_out_a_quarter_and_reports_it(store_copy, tiny):
    """Point 4: 12 + 12 uploads: a quarter of each is held out, scored, and its accuracy shown and stored;
    a model trained from too few uploads is flagged as not checked. The time is said before training."""
    real = [(p.name, p.read_bytes(), "image/png") for p in sorted(tiny["real"].glob("*.png"))[:12]]
    fake = [(p.name, p.read_bytes(), "image/png") for p in sorted(tiny["fake_dirs"]["gen1"].glob("*.png"))[:12]]
    at = app_on()
    assert any("Time:" in c.value for c in at.caption) or any("Estimate the time" in b.label for b in at.button)
    at.text_input(key="tr_name").set_value("checked")
    at.file_uploader(key="tr_fake").set_value(fake)
    at.file_uploader(key="tr_real").set_value(real)
    at.selectbox(key="tr_method").set_value("marra18")
    at.selectbox(key="tr_extractor").set_value("wavelet")
    at.number_input(key="tr_crop").set_value(64)
    at.button(key="tr_go").click().run()
    no_errors(at)
    done = [s.value for s in at.success if "Stored checked" in s.value]
    assert done and "held-out accuracy" in done[0], [s.value for s in at.success]
    from engine.storage.store import Store

    with Store(store_copy) as store:
        fp = store.load("checked")
    assert (
        fp.n_real + len(fp.test_files["real"]) <= 12
        and len(fp.test_files["real"]) >= 2
        and len(fp.test_files["fake"]) >= 2
    )
    assert fp.test_metrics["accuracy"] > 0.5
    table = _frame(at, "name", "checked")
    assert table.set_index("name").loc["checked", "checked"] == "held-out"
    assert not at.button(key="tr_go").proto.disabled  # enabled again once the run is over
    cross = app_on("views/cross.py")  # its held-out uploads were kept in the store: it joins the heatmap (point 2)
    no_errors(cross)
    assert "checked" in json.loads(cross.get("plotly_chart")[0].proto.spec)["data"][0]["x"]
    _add_copy(store_copy, "gen1", "unchecked", test_files={}, test_metrics={})
    at = app_on()
    assert any("Not checked on held-out images: unchecked" in w.value for w in at.warning)


# ------------------------------------------------------------------ point 6
@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    from engine.storage.store import Store
    from engine.zoo.demo import build_demo

    root = tmp_path_factory.mktemp("demo_zoo") / "store"
    with Store(root) as store:
        build_demo(store)
    return root


def test_demo_lineage_shows_truth_and_recovers_its_families(demo_store, monkeypatch):
    """Point 6: the demo zoo's truth beside the inferred graph, with ARI and recall; the page's defaults
    recover the three families (the engine's 0.70 gave ARI 0.50, as the issue reported)."""
    monkeypatch.setenv("DIF_CACHE_DIR", str(demo_store))
    monkeypatch.setenv("DIF_DEMO", "0")
    at = app_on("views/lineage.py")
    no_errors(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Families recovered (ARI)"] == "1.00"
    assert float(metrics["Parent-child recall"]) >= 0.8
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert titles == ["Inferred from cross-detection", "Ground truth (how the zoo was built)"]
    assert any(
        re.search(r"general defaults .* give ARI \d\.\d\d here", c.value) for c in at.caption
    )  # measured 0.50, said honestly
    if (
        float(metrics["Parent-child recall"]) < 1.0
    ):  # measured 0.80: zoo-base -> zoo-ft-a is missed, and the page says so
        assert any("missed parent-child pairs" in w.value for w in at.warning)


# ------------------------------------------------------------------ point 7
def test_landing_section_samples_attribute_in_one_click(tiny):
    at = app_on()
    no_errors(at)
    assert any("recognises which image generator made an image" in m.value for m in at.markdown)
    samples = [b for b in at.button if b.label == "Attribute this"]
    assert len(samples) >= 2
    at.button(key="sample_0").click().run()
    no_errors(at)
    assert at.title[0].value == "Attribute"
    assert any(m.value.startswith("####") and ("from **" in m.value or "**unknown**" in m.value) for m in at.markdown)
    assert any("true sources:" in i.value for i in at.info)  # so the verdict can be checked


def test_lineage_sliders_explain_themselves_and_bad_report_has_a_way_back(tiny):
    at = app_on("views/lineage.py")
    no_errors(at)
    assert all(s.help for s in at.slider)
    at.slider(key="lin_edge_threshold").set_value(0.0).run()
    assert any("changes nothing" in c.value for c in at.caption)
    bad = app_on(query={"report": "ffffffffffff"})
    assert len(bad.error) == 1
    bad.button(key="lin_leave_report").click().run()
    no_errors(bad)
    assert "report" not in bad.query_params
    assert len(bad.get("plotly_chart")) == 1


def test_heatmap_says_balanced_accuracy_and_chance(tiny):
    at = app_on("views/cross.py")
    no_errors(at)
    assert any("balanced accuracy" in c.value and "50 = chance" in c.value for c in at.caption)


def test_training_time_is_said_before_training(store_copy):
    """Point 4: with no DIF model to scale from, one click times two real steps and the page says the total."""
    at = app_on()
    at.selectbox(key="tr_method").set_value("dif")
    at.selectbox(key="tr_extractor").set_value("wavelet")
    at.number_input(key="tr_crop").set_value(64)
    at.number_input(key="tr_batch").set_value(4)
    at.number_input(key="tr_steps").set_value(300)
    at.run()
    assert any(b.label == "Estimate the time (runs 2 steps)" for b in at.button)
    at.button(key="tr_time").click().run()
    no_errors(at)
    said = [c.value for c in at.caption if c.value.startswith("Time: about")]
    assert said and "for 300 steps (measured here" in said[0], [c.value for c in at.caption]
