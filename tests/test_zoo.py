"""The model-family zoo: layout, ground truth, caching, determinism, and the CLI over it."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from zoo_fixtures import TINY, tiny_zoo

from engine.cli.main import main
from engine.storage.store import Store
from engine.zoo.demo import MODELS, ZooConfig, build_demo, demo_model_names, demo_truth, zoo_dir
from engine.zoo.models import FitSpec, clone, fit, generate, new_model
from engine.zoo.photos import POOLS, pool_arrays


@pytest.fixture(scope="module")
def zoo():
    return tiny_zoo()


def test_models_truth_and_names(zoo):
    store, manifest = zoo
    names = [m.name for m in MODELS]
    assert manifest["models"] == names == demo_model_names(store)
    assert {"zoo-base", "zoo-base-ckpt1", "zoo-ft-a", "zoo-ft-a-ft", "zoo-seed2", "zoo-shuffle"} <= set(names)
    truth = demo_truth(store)
    assert truth == json.loads((zoo_dir(store) / "truth.json").read_text()) == manifest["truth"]
    assert truth["models"]["zoo-ft-a-ft"]["parent"] == "zoo-ft-a"
    assert truth["models"]["zoo-shuffle"]["family"] not in {
        truth["models"]["zoo-base"]["family"],
        truth["models"]["zoo-seed2"]["family"],
    }
    assert ["zoo-base", "zoo-ft-a"] in truth["parent_child"]
    for name in names:
        fp = store.load(name)
        assert fp.metadata["family"] == truth["models"][name]["family"]
        assert fp.metadata["parent"] == truth["models"][name]["parent"]
        assert fp.extractor == "wavelet" and fp.crop == TINY.crop
        assert len(fp.test_files["fake"]) == TINY.n_test == len(fp.test_files["real"])


def test_images_are_pngs_named_by_content(zoo):
    store, manifest = zoo
    files = [Path(f) for f in manifest["files"]]
    assert len(files) >= 2 * (TINY.n_train + TINY.n_test)
    for f in files[:: max(1, len(files) // 25)]:
        data = f.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert f.stem == hashlib.sha256(data).hexdigest()[:24]
        assert f.is_relative_to(zoo_dir(store))
    fp = store.load("zoo-base")
    assert not set(fp.test_files["real"]) & set(store.load("zoo-seed2").test_files["fake"])
    # held-out generated images are not training images
    train_hashes = set(fp.train_files["fake"])
    test_hashes = {hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in fp.test_files["fake"]}
    assert not train_hashes & test_hashes


def test_second_build_is_instant_and_a_new_config_rebuilds(zoo, tmp_path):
    store, _ = zoo
    start = time.time()
    again = build_demo(store, config=TINY)
    assert again["cached"] is True and time.time() - start < 2.0
    fresh = Store(tmp_path / "empty")
    with pytest.raises(Exception, match="dif demo build"):
        demo_truth(fresh)
    assert ZooConfig(base_steps=TINY.base_steps + 1).key() != TINY.key()


def test_photo_pools_do_not_overlap():
    seen: set[str] = set()
    for photos in POOLS.values():
        assert not seen & set(photos)
        seen |= set(photos)


def test_generator_training_is_deterministic_and_fine_tunes_stay_close():
    from engine.zoo.demo import single_thread

    with single_thread():
        _check_determinism()


def _check_determinism() -> None:
    photos = pool_arrays("base", 16)[:40]
    a = fit(new_model("tconv", 3, 4), photos, FitSpec(15, 2e-3, 1, batch=4, patch=16))
    b = fit(new_model("tconv", 3, 4), photos, FitSpec(15, 2e-3, 1, batch=4, patch=16))
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    tiles = pool_arrays("demo", 16)[:4]
    assert np.array_equal(generate(a, tiles), generate(b, tiles))
    ft = fit(clone(a), photos, FitSpec(5, 5e-4, 2, batch=4, patch=16))
    other = new_model("tconv", 4, 4)
    w = lambda m: torch.cat([p.flatten() for p in m.parameters()])  # noqa: E731
    assert (w(ft) - w(a)).norm() < 0.1 * (w(other) - w(a)).norm()


def test_cli_over_the_zoo(zoo, capsys):
    store, manifest = zoo
    root = str(store.root)
    assert main(["demo", "info", "--cache", root]) == 0
    assert "family A" in capsys.readouterr().out
    assert main(["cross", "zoo-base", "zoo-shuffle", "--csv", "--cache", root]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0].split(",")[1:] == ["zoo-base", "zoo-shuffle"] and len(rows) == 3
    assert main(["lineage", "--json", "--cache", root]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ari"] >= 0.8 and "parent_child_recall" in out
    assert ["zoo-shuffle"] in out["families"]
    assert len(out["cross"]["names"]) == len(MODELS)
    assert main(["lineage", "zoo-base", "zoo-ft-a", "--family-threshold", "0.99", "--cache", root]) == 0
    assert "2 families" in capsys.readouterr().out
    image = store.load("zoo-shuffle").test_files["fake"][0]
    assert main(["attribute", image, "--json", "--cache", root]) == 0
    result = json.loads(capsys.readouterr().out)["results"][0]
    assert result["verdict"] in {"zoo-shuffle", "unknown"} and result["ranking"][0]["model"] == "zoo-shuffle"
    assert main(["lineage", "--family-threshold", "2", "--cache", root]) == 2
    assert "family_threshold" in capsys.readouterr().err
    assert main(["cross", "no-such-model", "--cache", root]) == 2


def test_cli_lineage_exports(zoo, tmp_path, capsys):
    import networkx as nx

    store, _ = zoo
    files = {k: tmp_path / f"l.{k}" for k in ("graphml", "json", "html", "png")}
    argv = [
        "lineage",
        "--cache",
        str(store.root),
        "--graphml",
        str(files["graphml"]),
        "--node-link",
        str(files["json"]),
        "--html",
        str(files["html"]),
        "--png",
        str(files["png"]),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "ARI" in out and "parent-child recall" in out
    g = nx.read_graphml(files["graphml"])
    assert set(g.nodes) == {m.name for m in MODELS}
    assert len(json.loads(files["json"].read_text())["nodes"]) == len(MODELS)
    assert files["html"].read_text().startswith("<!DOCTYPE html>")
    assert files["png"].read_bytes()[:4] == b"\x89PNG"


def test_fingerprints_with_any_header_length_round_trip(zoo):
    # regression: a safetensors header length whose low byte is 0x80 was refused as a "pickle" (1 in 256 saves)
    from engine.storage.fingerprint import parse_fingerprint

    store, _ = zoo
    fp = store.load("zoo-base")
    low_bytes = set()
    for k in range(256):
        fp.metadata = {"pad": "x" * k}
        data = fp.to_bytes()
        low_bytes.add(data[0])
        assert parse_fingerprint(data).metadata == {"pad": "x" * k}
    assert 0x80 in low_bytes
