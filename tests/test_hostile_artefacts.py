"""Hostile fingerprint files: every one is refused by ``dif import`` and Store.import_bytes with one line
naming the file, nothing it carries is executed, and the store stays exactly as it was.

The victim store holds a real model trained here; each hostile file is derived from that model's
real exported bytes (broken card, wrong dtype, oversized or lying header, pickle/zip/npy, bad name).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from safetensors.torch import save as st_save

from engine.api import train_fingerprint
from engine.cli.main import main as dif_main
from engine.data.images import list_images, load_image
from engine.errors import DifError
from engine.method.config import TrainConfig
from engine.storage.fingerprint import tensors_digest
from engine.storage.store import Store

CFG = TrainConfig(method="marra18", extractor="wavelet", crop=64, border=8, steps=1, batch=8)


class _Trap:
    """Unpickling this creates the file ``path``: proof, if it ever appears, that a loader ran it."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


# ------------------------------------------------------------------ the victim store and its real bytes
@pytest.fixture(scope="module")
def victim(tiny_dataset, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("victim") / "store"
    real = [load_image(p, crop=None) for p in list_images(tiny_dataset["real"])[:4]]
    fake = [load_image(p, crop=None) for p in list_images(tiny_dataset["fake"])[:4]]
    with Store(root) as store:
        train_fingerprint("keep", real, fake, config=CFG, store=store)
        good = store.raw("keep")
    return {"root": root, "good": good, "trap": tmp_path_factory.mktemp("trap") / "EXECUTED"}


def snapshot(root: Path) -> tuple:
    """Everything an import could change: names, every model's bytes, every key (train-key aliases too)."""
    with Store(root) as store:
        keys = sorted(k for k in store.fingerprints.iterkeys())
        return store.names(), {n: store.raw(n) for n in store.names()}, keys


def split(data: bytes) -> tuple[dict, bytes]:
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def join(header: dict | bytes, body: bytes) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw + body


def with_card(good: bytes, edit: Callable[[dict], None]) -> bytes:
    header, body = split(good)
    card = json.loads(header["__metadata__"]["card"])
    edit(card)
    header["__metadata__"]["card"] = json.dumps(card)
    return join(header, body)


def with_header(good: bytes, edit: Callable[[dict], None]) -> bytes:
    header, body = split(good)
    edit(header)
    return join(header, body)


def retyped(good: bytes, dtype: torch.dtype) -> bytes:
    """The real tensors converted to ``dtype``, saved with safetensors and our own metadata."""
    header, _ = split(good)
    from safetensors.torch import load

    tensors = {k: v.to(dtype) for k, v in load(good).items()}
    return st_save(tensors, metadata=header["__metadata__"])


def non_square(good: bytes) -> bytes:
    """A self-consistent file (checksum and crop recomputed) whose fingerprint is 3 x 48 x 56."""
    from safetensors.torch import load

    header, _ = split(good)
    tensors = load(good)
    tensors["fingerprint"] = torch.randn(3, 48, 56)
    card = json.loads(header["__metadata__"]["card"])
    card["crop"], card["border"] = 72, 8
    card["tensor_sha256"] = tensors_digest(tensors["fingerprint"], tensors["train_rho_real"], tensors["train_rho_fake"])
    return st_save(tensors, metadata={**header["__metadata__"], "card": json.dumps(card)})


def cases(good: bytes, trap: Path) -> dict[str, bytes]:
    """name -> hostile file bytes (all derived from the real exported model)."""
    header, body = split(good)
    n = len(json.dumps(header))
    npy = io.BytesIO()
    np.save(npy, np.zeros((3, 48, 48), np.float32))
    pt = io.BytesIO()
    torch.save({"fingerprint": _Trap(str(trap))}, pt)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("fingerprint.safetensors", good)
    deep = b'{"a":' + b"[" * 50_000 + b"]" * 50_000 + b"}"

    def drop(key):
        return lambda c: c.pop(key)

    def put(key, value):
        return lambda c: c.__setitem__(key, value)

    return {
        # the JSON card
        "card-missing-tensor_sha256": with_card(good, drop("tensor_sha256")),
        "card-missing-crop": with_card(good, drop("crop")),
        "card-missing-name": with_card(good, drop("name")),
        "card-extra-field": with_card(good, put("payload", "os.system('rm -rf /')")),
        "card-crop-is-text": with_card(good, put("crop", "64")),
        "card-crop-is-float": with_card(good, put("crop", 64.0)),
        "card-n_real-is-bool": with_card(good, put("n_real", True)),
        "card-config-is-list": with_card(good, put("config", [1, 2])),
        "card-mu_real-is-null": with_card(good, put("mu_real", None)),
        "card-mu_fake-is-nan": with_card(good, put("mu_fake", float("nan"))),
        "card-is-list": with_header(good, lambda h: h["__metadata__"].__setitem__("card", "[1, 2]")),
        "card-is-number": with_header(good, lambda h: h["__metadata__"].__setitem__("card", 5)),
        "card-not-json": with_header(good, lambda h: h["__metadata__"].__setitem__("card", "{'name': 'x'")),
        "card-deeply-nested": with_header(
            good, lambda h: h["__metadata__"].__setitem__("card", "[" * 50_000 + "]" * 50_000)
        ),
        "card-5000-digit-int": with_header(
            good, lambda h: h["__metadata__"].__setitem__("card", '{"crop": 1' + "0" * 5000 + "}")
        ),
        "metadata-is-list": with_header(good, lambda h: h.__setitem__("__metadata__", ["card"])),
        "metadata-missing": with_header(good, lambda h: h.pop("__metadata__")),
        # names in the card
        "name-dotdot": with_card(good, put("name", "../../x")),
        "name-slash": with_card(good, put("name", "a/b")),
        "name-nul": with_card(good, put("name", "keep\x00evil")),
        "name-1000-chars": with_card(good, put("name", "n" * 1000)),
        "name-newline": with_card(good, put("name", "keep\nforged line")),
        "name-surrogate": with_card(good, put("name", os.fsdecode(b"caf\xe9"))),
        # tensors
        "dtype-float16": retyped(good, torch.float16),
        "dtype-int64": retyped(good, torch.int64),
        "dtype-float64": retyped(good, torch.float64),
        "shape-oversized-4096": with_header(good, lambda h: h["fingerprint"].__setitem__("shape", [3, 4096, 4096])),
        "shape-over-limit": with_header(good, lambda h: h["fingerprint"].__setitem__("shape", [3, 10**12, 10**12])),
        "shape-huge-vector": with_header(good, lambda h: h["train_rho_real"].__setitem__("shape", [10**6])),
        "shape-5000-digits": join(
            json.dumps(header).replace('"shape": [3', '"shape": [3' + "0" * 5000, 1).encode(), body
        ),
        "shape-non-square": non_square(good),
        "offsets-past-end": with_header(good, lambda h: h["fingerprint"].__setitem__("data_offsets", [0, 10**9])),
        "extra-tensor": with_header(good, lambda h: h.__setitem__("extra", dict(h["train_rho_real"]))),
        "tensor-entry-is-number": with_header(good, lambda h: h.__setitem__("fingerprint", 5)),
        # the safetensors framing
        "header-length-past-end": (len(good)).to_bytes(8, "little") + good[8:],
        "header-length-2^63": (2**63).to_bytes(8, "little") + good[8:],
        "header-length-zero": (0).to_bytes(8, "little") + good[8:],
        "header-deeply-nested": join(deep, body),
        "header-not-utf8": join(b'{"\xff\xfe": 1}', body),
        "truncated-in-header": good[: 8 + n // 2],
        "truncated-in-tensors": good[:-7],
        "empty": b"",
        "random": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        # other formats, some of which run code when loaded by a careless tool
        "npy": npy.getvalue(),
        "zip-of-safetensors": zipped.getvalue(),
        "torch-save-zip-with-trap": pt.getvalue(),
        "pickle-protocol-5-trap": pickle.dumps(_Trap(str(trap)), protocol=5),
        "pickle-protocol-0-trap": pickle.dumps(_Trap(str(trap)), protocol=0),
        "json": json.dumps(json.loads(header["__metadata__"]["card"])).encode(),
    }


def _all_cases(victim) -> dict[str, bytes]:
    return cases(victim["good"], victim["trap"])


# ------------------------------------------------------------------ the tests
def test_the_untouched_file_imports(victim, tmp_path):
    """Control: the real bytes every hostile case starts from are accepted (so refusals mean something)."""
    path = tmp_path / "good.dif"
    path.write_bytes(victim["good"])
    with Store(tmp_path / "other") as other:
        assert other.import_file(path).name == "keep"


def test_store_import_bytes_refuses_every_hostile_file(victim):
    before = snapshot(victim["root"])
    problems = {}
    with Store(victim["root"]) as store:
        for name, data in _all_cases(victim).items():
            with pytest.raises(DifError) as info:
                store.import_bytes(data, f"{name}.dif")
            problems[name] = str(info.value)
    for name, message in problems.items():
        assert message.startswith(f"{name}.dif: "), message
        assert "\n" not in message and len(message) < 400, (name, message)
    assert "invalid name" in problems["name-dotdot"] and "invalid name" in problems["name-nul"]
    assert "float32" in problems["dtype-float16"] and "float32" in problems["dtype-int64"]
    assert "pickle" in problems["pickle-protocol-5-trap"] and "pickle" in problems["torch-save-zip-with-trap"]
    assert "missing field 'tensor_sha256'" in problems["card-missing-tensor_sha256"]
    assert "unknown fields" in problems["card-extra-field"]
    assert "'crop' has type str" in problems["card-crop-is-text"]
    assert "3 x S x S" in problems["shape-non-square"]
    assert not victim["trap"].exists(), "a hostile file's code ran"
    assert snapshot(victim["root"]) == before
    print(f"\nhostile artefacts (Store.import_bytes): {len(problems)} inputs, {len(problems)} refused, store unchanged")


def test_dif_import_cli_refuses_every_hostile_file_in_one_line(victim, tmp_path, capsys):
    before = snapshot(victim["root"])
    files = {}
    for name, data in _all_cases(victim).items():
        files[name] = tmp_path / f"{name}.safetensors"
        files[name].write_bytes(data)
    files["a-directory"] = tmp_path / "a-directory.safetensors"
    files["a-directory"].mkdir()
    refused = 0
    for name, path in files.items():
        rc = dif_main(["import", str(path), "--cache", str(victim["root"])])
        out, err = capsys.readouterr()
        assert rc == 2 and out == "", (name, rc, out, err)
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"dif: error: {path}: "), (name, err)
        assert "internal error" not in err and len(lines[0]) < 500, (name, err)
        refused += 1
    # a good file under a hostile --name is refused too
    good = tmp_path / "good.dif"
    good.write_bytes(victim["good"])
    for bad_name in ("../../x", "a\x00b", "n" * 1000, os.fsdecode(b"\xff\xfe")):
        rc = dif_main(["import", str(good), "--name", bad_name, "--cache", str(victim["root"])])
        err = capsys.readouterr().err
        assert rc == 2 and len(err.splitlines()) == 1 and "invalid name" in err, (bad_name, err)
        refused += 1
    assert not victim["trap"].exists(), "a hostile file's code ran"
    assert snapshot(victim["root"]) == before
    print(
        f"\nhostile artefacts (dif import): {len(files) + 4} inputs, {refused} refused, store unchanged, 0 entries lost"
    )


def test_real_dif_process_refuses_a_pickle_without_running_it(victim, tmp_path):
    """The installed entry point, in its own process: refusal, one line, exit 2, trap not sprung."""
    before = snapshot(victim["root"])
    path = tmp_path / "model.dif"
    path.write_bytes(pickle.dumps(_Trap(str(victim["trap"]))))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "import", str(path), "--cache", str(victim["root"])],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"dif: error: {path}: looks like a pickle/zip file; refusing to load it (only safetensors fingerprints are "
        "accepted)"
    ]
    assert not victim["trap"].exists()
    assert snapshot(victim["root"]) == before


def test_dashboard_import_refuses_hostile_files_in_one_line(victim, monkeypatch):
    """The Models page's import box goes through the same checks: one st.error, table unchanged."""
    from test_dashboard import app_on

    monkeypatch.setenv("DIF_CACHE_DIR", str(victim["root"]))
    monkeypatch.setenv("DIF_DEMO", "0")
    before = snapshot(victim["root"])
    hostile = _all_cases(victim)
    at = app_on()
    for name in ("name-dotdot", "dtype-float16", "card-is-number", "header-deeply-nested", "torch-save-zip-with-trap"):
        at.file_uploader(key="import_file").set_value(
            (f"{name}.safetensors", hostile[name], "application/octet-stream")
        )
        at.run()
        at.button(key="import_go").click().run()
        assert not at.exception, (name, [e.value for e in at.exception])
        assert len(at.error) == 1 and at.error[0].value.startswith(f"import: {name}.safetensors: "), (
            name,
            [e.value for e in at.error],
        )
        assert list(at.dataframe[0].value["name"]) == ["keep"]
    assert not victim["trap"].exists()
    assert snapshot(victim["root"]) == before
