"""Dashboard tests: every page rendered with Streamlit's AppTest on a tiny real store built here.

The store holds three real fingerprints (wavelet residuals, 64 px crops, 20 steps) of tiny
transposed-convolution generators: gen0, a fine-tune of it (gen0-ft) and an unrelated gen1,
trained against scikit-image photo tiles. The app finds the store through DIF_CACHE_DIR.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TinyGenerator, apply_generator, photo_tiles, write_pngs
from PIL import Image

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
TIMEOUT = 120
TINY_CONFIG = dict(
    method="marra18", crop=64, border=8
)  # the pages need working detectors; a 20-step DIF on 12 tiles is noise


def fine_tuned(seed: int, shift_seed: int, scale: float = 0.03) -> TinyGenerator:
    """gen<seed> with its weights nudged a little: a 'fine-tune' that keeps most of the parent's traces."""
    gen = TinyGenerator(seed)
    g = torch.Generator().manual_seed(shift_seed)
    with torch.no_grad():
        for p in gen.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
    return gen


def build_tiny_store(root: Path) -> dict:
    """Write images, train three fingerprints into ``root / 'store'``; return paths and names."""
    from engine.api import train_from_folders
    from engine.method.config import TrainConfig
    from engine.storage.store import Store

    tiles = photo_tiles(64, per_photo=12)
    fake_src = [t for t in tiles if t[0].startswith(("astronaut", "rocket"))]
    real = [t for t in tiles if t[0].startswith(("coffee", "chelsea"))]
    real_dir = write_pngs(root / "real", real)
    gens = {"gen0": TinyGenerator(0), "gen0-ft": fine_tuned(0, 7), "gen1": TinyGenerator(1)}
    meta = {
        "gen0": {"release_date": "2023-01-01"},
        "gen0-ft": {"release_date": "2023-06-01", "base_model": "gen0"},
        "gen1": {"release_date": "2023-03-01"},
    }
    dirs = {name: write_pngs(root / name, apply_generator(gen, fake_src, name)) for name, gen in gens.items()}
    store = Store(root / "store")
    config = TrainConfig(**TINY_CONFIG)
    for name, folder in dirs.items():
        train_from_folders(name, real_dir, folder, config, store=store, metadata=meta[name])
    store.close()
    return {"store": root / "store", "real": real_dir, "fake_dirs": dirs, "names": sorted(gens)}


def shared_tiny_store(tmp_path_factory) -> dict:
    """The tiny store, built once per pytest session and reused by the browser tests."""
    import json

    root = tmp_path_factory.getbasetemp() / "dashboard_tiny"
    marker = root / "built.json"
    if not marker.exists():
        root.mkdir(parents=True, exist_ok=True)
        info = build_tiny_store(root)
        marker.write_text(
            json.dumps({"fake_dirs": {k: str(v) for k, v in info["fake_dirs"].items()}, "names": info["names"]})
        )
    saved = json.loads(marker.read_text())
    return {
        "store": root / "store",
        "real": root / "real",
        "fake_dirs": {k: Path(v) for k, v in saved["fake_dirs"].items()},
        "names": saved["names"],
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    info = shared_tiny_store(tmp_path_factory)
    mp = pytest.MonkeyPatch()
    mp.setenv("DIF_CACHE_DIR", str(info["store"]))
    mp.setenv("DIF_DEMO", "0")
    yield info
    mp.undo()


def app_on(page: str | None = None, query: dict | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    if page:
        at.switch_page(page).run()
    return at


def no_errors(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def typed_array(value) -> np.ndarray:
    """Plotly 7 JSON sends numpy arrays as {dtype, bdata (base64), shape}; plain lists otherwise."""
    import base64

    if isinstance(value, dict) and "bdata" in value:
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        if shape:
            arr = arr.reshape([int(x) for x in str(shape).split(",")])
        return arr.astype(float)
    return np.asarray(value, dtype=float)


# ------------------------------------------------------------------ pages
def test_models_page_lists_store(tiny):
    at = app_on()
    no_errors(at)
    assert at.title[0].value == "Models"
    table = at.dataframe[0].value
    assert sorted(table["name"]) == tiny["names"]
    assert table["held-out accuracy"].notna().all()
    assert any("cpu" in c.value or "cuda" in c.value for c in at.sidebar.caption)


def test_models_page_trains_from_uploads_and_rejects_bad_names(tiny):
    at = app_on()
    real = [(p.name, p.read_bytes(), "image/png") for p in sorted(tiny["real"].glob("*.png"))[:4]]
    fake = [(p.name, p.read_bytes(), "image/png") for p in sorted(tiny["fake_dirs"]["gen1"].glob("*.png"))[:4]]
    at.text_input(key="tr_name").set_value("../evil")
    at.file_uploader(key="tr_fake").set_value(fake)
    at.file_uploader(key="tr_real").set_value(real)
    at.selectbox(key="tr_extractor").set_value("wavelet")
    at.number_input(key="tr_crop").set_value(64)
    at.number_input(key="tr_steps").set_value(3)
    at.number_input(key="tr_batch").set_value(4)
    at.number_input(key="tr_target_fpr").set_value(0.25)
    at.number_input(key="tr_jpeg_target_fpr").set_value(0.3)
    at.button(key="tr_go").click().run()
    assert not at.exception
    assert len(at.error) == 1 and "invalid name" in at.error[0].value
    assert at.dataframe[0].value.shape[0] == 3  # the rest of the page still renders
    at.text_input(key="tr_name").set_value("uploaded")
    at.button(key="tr_go").click().run()
    no_errors(at)
    assert any("Stored uploaded" in s.value for s in at.success)
    assert "uploaded" in set(at.dataframe[0].value["name"])  # the table was redrawn with the new model
    from engine.storage.store import Store

    with Store(tiny["store"]) as store:
        fp = store.load("uploaded")
        assert (fp.n_fake, fp.n_real, fp.extractor) == (4, 4, "wavelet")
        assert fp.history[-1]["step"] == 3
        assert (fp.config["target_fpr"], fp.config["jpeg_target_fpr"]) == (0.25, 0.3)  # the form's targets
        store.delete("uploaded")


def test_model_detail_download_round_trips(tiny, monkeypatch):
    """Click the model's download button; the bytes it serves are the stored model file, and parse back to it.

    AppTest hands each run a fresh in-memory media store and drops it afterwards; a recording
    subclass keeps it so the file behind the button's URL can be read as the browser would fetch it.
    """
    import streamlit.testing.v1.app_test as app_test
    import torch
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    from engine.storage.fingerprint import parse_fingerprint
    from engine.storage.store import Store

    storages: list[MemoryMediaFileStorage] = []

    class RecordingStorage(MemoryMediaFileStorage):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            storages.append(self)

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", RecordingStorage)
    at = app_on()
    at.selectbox(key="detail_model").set_value("gen1").run()
    no_errors(at)
    assert len(at.get("image")) >= 1
    button = at.download_button(key="dl_model")
    assert button.label == "Download model file" and not button.proto.disabled
    button.click().run()
    no_errors(at)
    assert at.selectbox(key="detail_model").value == "gen1"  # the click's rerun keeps the selection
    url = at.download_button(key="dl_model").proto.url
    served = storages[-1].get_file(url.rsplit("/", 1)[-1])
    assert served.filename == "gen1.dif.safetensors" and served.mimetype == "application/octet-stream"
    with Store(tiny["store"]) as store:
        assert served.content == store.raw("gen1")
        stored = store.load("gen1")
    downloaded = parse_fingerprint(served.content, "download")
    assert downloaded.name == "gen1" and downloaded.train_key == stored.train_key
    assert torch.equal(downloaded.tensor, stored.tensor)


def test_import_rejects_garbage_with_one_line(tiny):
    at = app_on()
    at.file_uploader(key="import_file").set_value(("x.safetensors", b"\x80\x04garbage", "application/octet-stream"))
    at.run()
    at.button(key="import_go").click().run()
    assert not at.exception
    assert len(at.error) == 1 and "pickle" in at.error[0].value
    assert at.dataframe[0].value.shape[0] == 3


def test_cross_page_heatmap(tiny):
    at = app_on("views/cross.py")
    no_errors(at)
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    import json

    trace = json.loads(charts[0].proto.spec)["data"][0]
    z = typed_array(trace["z"])
    assert z.shape == (3, 3)
    names = list(trace["x"])  # the page orders models by family: index by name
    assert sorted(names) == tiny["names"] and list(trace["y"]) == names
    at_ = lambda det, test: z[names.index(det), names.index(test)]  # noqa: E731
    # each detector finds its own generator's held-out images, far above chance (measured 100, 100, 96)
    assert np.all(np.diag(z) >= 85), z
    # and the unrelated family's less often than its own (measured gaps: 12, 50, 50 points)
    family = {"gen0": "a", "gen0-ft": "a", "gen1": "b"}
    for det in names:
        for test in names:
            if family[test] != family[det]:
                assert at_(det, det) > at_(det, test), (det, test, z)
    # the fine-tune and its parent detect each other (shared traces; measured 100 both ways)
    assert min(at_("gen0", "gen0-ft"), at_("gen0-ft", "gen0")) >= 85, z


def test_cross_page_no_models_selected_is_one_error(tiny):
    at = app_on("views/cross.py")
    at.multiselect(key="cross_models").set_value([]).run()
    assert not at.exception
    assert len(at.error) == 1 and "No models selected" in at.error[0].value


def test_lineage_share_round_trip(tiny):
    at = app_on("views/lineage.py")
    no_errors(at)
    assert len(at.get("plotly_chart")) == 1
    at.button(key="lin_share").click().run()
    no_errors(at)
    report_id = at.query_params["report"]
    report_id = report_id[0] if isinstance(report_id, list) else report_id
    from engine.storage.store import Store

    with Store(tiny["store"]) as store:
        payload = store.load_report(report_id)
    assert sorted(payload["models"]) == tiny["names"]
    # a teammate opens the link on the root URL: routed to Lineage, same models, no recomputation needed
    other = app_on(query={"report": report_id})
    no_errors(other)
    assert other.title[0].value == "Lineage"
    assert any(report_id in i.value for i in other.info)
    assert len(other.get("plotly_chart")) == 1


def test_lineage_bad_report_is_one_error(tiny):
    at = app_on(query={"report": "../../etc/passwd"})
    assert not at.exception
    assert len(at.error) == 1 and "invalid name" in at.error[0].value


def test_attribute_ranks_generator_first(tiny):
    at = app_on("views/attribute.py")
    no_errors(at)
    img = sorted(tiny["fake_dirs"]["gen1"].glob("*.png"))[-1]
    at.file_uploader(key="attr_upload").set_value(
        [(img.name, img.read_bytes(), "image/png"), ("broken.png", b"not an image", "image/png")]
    )
    at.run()
    assert not at.exception
    assert len(at.error) == 1 and "broken.png" in at.error[0].value
    assert any("from **gen1**" in m.value for m in at.markdown)
    assert len(at.get("plotly_chart")) == 1


def test_sessions_do_not_share_uploads(tiny):
    a, b = app_on("views/attribute.py"), app_on("views/attribute.py")
    img = sorted(tiny["fake_dirs"]["gen0"].glob("*.png"))[0]
    a.file_uploader(key="attr_upload").set_value((img.name, img.read_bytes(), "image/png"))
    a.run()
    b.run()
    assert a.file_uploader(key="attr_upload").value
    assert not b.file_uploader(key="attr_upload").value
    assert not any(img.name in m.value for m in b.markdown)


def test_empty_store_every_page_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("DIF_CACHE_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("DIF_DEMO", "0")
    for page in (None, "views/cross.py", "views/lineage.py", "views/attribute.py"):
        at = app_on(page)
        no_errors(at)
        assert any("No models" in i.value or "no models" in i.value for i in at.info), page


# ------------------------------------------------------------------ helpers behind the pages
def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_c2pa_detection_and_software_tag():
    from dashboard.imagemeta import c2pa_present, image_metadata

    plain = png_bytes(np.zeros((8, 8, 3), np.uint8))
    assert not c2pa_present(plain)
    jumbf = struct.pack(">I", 40) + b"jumb" + struct.pack(">I", 32) + b"jumd" + b"c2pa" + b"\x00" * 12 + b"\x03c2pa\x00"
    signed = plain[:-12] + _png_chunk(b"caBX", jumbf) + plain[-12:]
    assert c2pa_present(signed)
    img = Image.new("RGB", (8, 8))
    exif = img.getexif()
    exif[0x0131] = "MyGenerator 2.1"
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    jpeg = buf.getvalue()
    app11 = b"\xff\xeb" + struct.pack(">H", 2 + 8 + len(jumbf)) + b"JP\x00\x00\x00\x00\x00\x01" + jumbf
    meta = image_metadata(jpeg[:2] + app11 + jpeg[2:])
    assert meta["c2pa_manifest"] is True and meta["software"] == "MyGenerator 2.1"
    assert image_metadata(jpeg)["c2pa_manifest"] is False


class _Upload:
    def __init__(self, name: str, data: bytes):
        self.name, self._data = name, data

    def getvalue(self) -> bytes:
        return self._data


def test_zip_uploads_are_read_in_memory():
    from dashboard.uploads import read_uploads

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("../../a.png", png_bytes(np.full((70, 70, 3), 9, np.uint8)))
        z.writestr("sub/b.png", b"garbage")
        z.writestr("notes.txt", b"ignored")
    out = read_uploads(
        [_Upload("batch.zip", buf.getvalue()), _Upload("c:\\x\\y.png", png_bytes(np.zeros((64, 64, 3), np.uint8)))]
    )
    assert [im.source for im in out.images] == ["batch.zip/a.png", "y.png"]
    assert len(out.problems) == 1 and "batch.zip/b.png" in out.problems[0]


def test_serve_command_is_loopback_and_xsrf_safe():
    import argparse

    from engine.cli.serve import is_loopback, serve_env, streamlit_command

    cmd = streamlit_command(8501, "127.0.0.1")
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.enableXsrfProtection") + 1] == "true"
    assert int(cmd[cmd.index("--server.maxUploadSize") + 1]) <= 200
    assert is_loopback("::1") and not is_loopback("0.0.0.0")
    env = serve_env(argparse.Namespace(cache=None, no_demo=True, address="0.0.0.0"))
    assert env["DIF_DEMO"] == "0" and env["DIF_SERVER_PATHS"] == "0"
    from engine.cli.common import add_common
    from engine.cli.serve import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"), add_common)
    args = parser.parse_args(["serve", "--no-demo"])
    assert (args.port, args.address, args.no_demo) == (8501, "127.0.0.1", True)


def test_attribute_reads_shifted_uploads_with_the_offset_reading_unless_unticked(tiny):
    """By default the page reads the uploads as ``dif attribute`` does (offsets on): the same verdicts
    and readings; unticked, as ``dif attribute --no-offsets`` does, with no offset reading anywhere."""
    from engine.data.images import load_image
    from engine.data.perturb import perturb
    from engine.lineage.attribution import attribute
    from engine.storage.store import Store

    files = sorted(tiny["fake_dirs"]["gen1"].glob("*.png"))[:6]
    shifted = perturb([load_image(f, crop=None) for f in files], "shift1")
    uploads = [(f"s{i}.png", png_bytes(im.pixels), "image/png") for i, im in enumerate(shifted)]
    at = app_on("views/attribute.py")
    at.file_uploader(key="attr_upload").set_value(uploads)
    at.run()
    no_errors(at)
    assert at.checkbox(key="attr_offsets").value is True
    store = Store(tiny["store"])
    fps = [store.load(n) for n in store.names()]
    for offsets in (True, False):
        if not offsets:
            at.checkbox(key="attr_offsets").uncheck()
            at.run()
            no_errors(at)
        page_results = list(at.session_state["attr_results"].values())[-1]
        expected = attribute(shifted, fps, store, offsets=offsets)
        assert [r.verdict for r in page_results] == [r.verdict for r in expected]
        readings = [[e.get("reading") for e in r.ranking] for r in page_results]
        assert readings == [[e.get("reading") for e in r.ranking] for r in expected]
        off_grid = any(x and "off the grid" in x for row in readings for x in row)
        assert off_grid is offsets  # the offset reading was used exactly when it was asked for
