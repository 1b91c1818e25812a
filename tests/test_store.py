"""The store: round trip, cache hit, corrupt entries, export/import, names — with real fingerprints."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from engine.api import train_fingerprint
from engine.data.images import list_images, load_image
from engine.errors import ConfigError, StoreError
from engine.method.config import TrainConfig
from engine.storage.fingerprint import Fingerprint, parse_fingerprint
from engine.storage.store import Store

CFG = TrainConfig(method="dif", extractor="wavelet", crop=64, border=8, steps=5, batch=8)


@pytest.fixture(scope="module")
def images(tiny_dataset):
    real = [load_image(p, crop=None) for p in list_images(tiny_dataset["real"])[:6]]
    fake = [load_image(p, crop=None) for p in list_images(tiny_dataset["fake"])[:6]]
    return real, fake


def test_round_trip_keeps_tensor_and_card(store, images):
    fp, hit = train_fingerprint("m1", *images, config=CFG, store=store)
    assert not hit
    back = store.load("m1")
    assert torch.equal(back.tensor, fp.tensor)
    assert back.card() == fp.card()
    assert back.mu_real == fp.mu_real and back.mu_fake != back.mu_real


def test_same_files_and_config_is_a_cache_hit(store, images):
    fp, _ = train_fingerprint("m1", *images, config=CFG, store=store)
    again, hit = train_fingerprint("m1-again", *images, config=CFG, store=store)
    assert hit and torch.equal(again.tensor, fp.tensor) and store.exists("m1-again")
    other, hit2 = train_fingerprint("m2", *images, config=TrainConfig(**{**CFG.to_dict(), "seed": 1}), store=store)
    assert not hit2 and not torch.equal(other.tensor, fp.tensor)


def test_training_is_deterministic_for_a_seed(images):
    a, _ = train_fingerprint("a", *images, config=CFG)
    b, _ = train_fingerprint("b", *images, config=CFG)
    assert torch.equal(a.tensor, b.tensor) and a.mu_fake == b.mu_fake


def test_corrupt_entry_is_reported_and_skipped(store, images):
    train_fingerprint("good", *images, config=CFG, store=store)
    fp, _ = train_fingerprint("bad", *images, config=TrainConfig(**{**CFG.to_dict(), "seed": 3}), store=store)
    data = bytearray(store.raw("bad"))
    data[-10] ^= 0xFF  # flip bits inside the tensor data
    store.fingerprints.set("fp:bad", bytes(data))
    listing = {name: (fp is not None, problem) for name, fp, problem in store.scan()}
    assert listing["good"] == (True, None)
    assert listing["bad"][0] is False and "checksum" in listing["bad"][1]
    with pytest.raises(StoreError, match="checksum"):
        store.load("bad")


def test_export_import_round_trip(tmp_path, store, images):
    fp, _ = train_fingerprint("shared", *images, config=CFG, store=store)
    path = store.export("shared", tmp_path / "shared.dif")
    other = Store(tmp_path / "teammate")
    got = other.import_file(path)
    assert got.name == "shared" and torch.equal(got.tensor, fp.tensor)
    with pytest.raises(StoreError, match="already exists"):
        other.import_file(path)
    other.import_file(path, name="shared-copy")
    assert other.names() == ["shared", "shared-copy"]


def test_import_refuses_pickle_and_leaves_store_unchanged(tmp_path, store, images):
    train_fingerprint("keep", *images, config=CFG, store=store)
    before = store.raw("keep")
    bad = tmp_path / "evil.dif"
    bad.write_bytes(pickle.dumps({"fingerprint": [1, 2, 3]}))
    with pytest.raises(StoreError, match="pickle"):
        store.import_file(bad)
    assert store.names() == ["keep"] and store.raw("keep") == before


def test_import_refuses_wrong_shape_nan_and_bad_card(tmp_path, images):
    fp, _ = train_fingerprint("x", *images, config=CFG)
    nan = Fingerprint(**{**fp.__dict__, "tensor": torch.full_like(fp.tensor, float("nan"))})
    with pytest.raises(StoreError, match="NaN"):
        parse_fingerprint(nan.to_bytes(), "nan.dif")
    wrong = Fingerprint(**{**fp.__dict__, "tensor": torch.zeros(3, 40, 40)})
    with pytest.raises(StoreError, match="does not match crop"):
        parse_fingerprint(wrong.to_bytes(), "wrong.dif")
    with pytest.raises(StoreError, match="too short|not a fingerprint"):
        parse_fingerprint(fp.to_bytes()[:7], "cut.dif")
    with pytest.raises(StoreError):
        parse_fingerprint(fp.to_bytes()[:-100], "truncated.dif")


@pytest.mark.parametrize("name", ["../evil", "a/b", "x\x00y", "", ".", "-rf", "n" * 65, "caf\u00e9"])
def test_bad_names_are_refused(store, name):
    with pytest.raises(ConfigError):
        store.load(name)


def test_reports_round_trip(store):
    store.save_report("r1", {"models": ["a"], "threshold": 0.7})
    assert store.load_report("r1") == {"models": ["a"], "threshold": 0.7}
    with pytest.raises(StoreError):
        store.load_report("nope")


def test_store_never_unpickles(store):
    store.fingerprints.set("fp:raw", b"bytes are fine")
    with pytest.raises(StoreError):
        store.fingerprints.set("fp:obj", {"a": 1})
    # an entry written by plain diskcache with a pickled value is refused when read
    import diskcache

    with diskcache.Cache(str(store.root / "fingerprints")) as plain:
        plain.set("fp:pickled", {"not": "bytes"})
    with pytest.raises(StoreError, match="pickle"):
        store.fingerprints.get("fp:pickled")
    assert json.dumps(store.names())  # listing still works
