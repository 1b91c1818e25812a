"""The transfer protocol of ``dif bench``: train on one set, detect on the same generator's images made
from other photos, and on another generator's, through the dif train / dif detect path."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TinyGenerator, apply_generator, photo_tiles, write_pngs


@pytest.fixture(scope="module")
def transfer_root(tmp_path_factory):
    """real/ (coffee, chelsea); gen-a/ on astronaut; gen-a-elsewhere/: the same generator on rocket;
    gen-b/: another generator (other weights) on rocket."""
    root = tmp_path_factory.mktemp("transfer")
    tiles = photo_tiles(64)
    real = [t for t in tiles if t[0].startswith(("coffee", "chelsea"))]
    astronaut = [t for t in tiles if t[0].startswith("astronaut")]
    rocket = [t for t in tiles if t[0].startswith("rocket")]

    def two_groups(items):  # name the top and bottom halves of a photo as two content groups (splits need two)
        return [
            (f"{n.split('_')[0]}{'top' if int(n.split('_')[1]) < 4 else 'bottom'}_{n.split('_', 1)[1]}", t)
            for n, t in items
        ]

    astronaut, rocket = two_groups(astronaut), two_groups(rocket)
    write_pngs(root / "real", real)
    write_pngs(root / "gen-a", apply_generator(TinyGenerator(0), astronaut, "a"))
    write_pngs(root / "gen-a-elsewhere", apply_generator(TinyGenerator(0), rocket, "a"))
    write_pngs(root / "gen-b", apply_generator(TinyGenerator(7, strength=0.06), rocket, "b"))
    return root


def test_transfer_bench_separates_the_generator_from_another_and_matches_dif_detect(transfer_root, tmp_path):
    from engine.api import detect
    from engine.cli.main import main
    from engine.data.images import list_images, load_images
    from engine.storage.store import Store

    out = tmp_path / "bench"
    code = main(
        [
            "bench",
            "--data",
            str(transfer_root),
            "--train-sets",
            "gen-a",
            "--methods",
            "marra18",
            "--crop",
            "64",
            "--train-sizes",
            "8",
            "--repeats",
            "1",
            "--no-reference-pool",
            "--out",
            str(out),
            "--cache",
            str(tmp_path / "cache"),
        ]
    )
    assert code == 0
    result = json.loads((out / "results.json").read_text())
    rows = {r["test_set"]: r for r in result["rows"]}
    assert set(rows) == {"gen-a", "gen-a-elsewhere", "gen-b", "real+SD-watermark"}
    assert rows["gen-a"]["in_set"] and not rows["gen-a-elsewhere"]["in_set"]
    # the same generator on other photos is recognised; another generator is not
    assert rows["gen-a-elsewhere"]["auc"] > 0.9 and rows["gen-a-elsewhere"]["flagged"] > 0.8
    assert rows["gen-b"]["flagged"] < rows["gen-a-elsewhere"]["flagged"] - 0.5
    # one path: the bench's numbers are what dif detect says with the stored fingerprint
    with Store(out / "store", residuals_root=tmp_path / "cache") as store:
        fp = store.load("gen-a.marra18.s0")
        images, _ = load_images(list_images(transfer_root / "gen-a-elsewhere"), crop=None)
        flagged = np.mean([r["label"] == "generated" for r in detect(fp, images, store)])
    assert flagged == pytest.approx(rows["gen-a-elsewhere"]["flagged"])
    table = (out / "results.md").read_text()
    assert "| gen-a | marra18 |" in table and "gen-a-elsewhere" in table
    # the fingerprints went to the bench's own store, not the user's
    with Store(tmp_path / "cache") as user:
        assert [m for m in user.names()] == []


def test_transfer_tables_rerender_from_json(transfer_root, tmp_path):
    from engine.cli.main import main

    out = tmp_path / "bench"
    assert (
        main(
            [
                "bench",
                "--data",
                str(transfer_root),
                "--train-sets",
                "gen-a",
                "--test-sets",
                "gen-b",
                "--methods",
                "marra18",
                "--crop",
                "64",
                "--train-sizes",
                "8",
                "--repeats",
                "2",
                "--no-reference-pool",
                "--out",
                str(out),
                "--cache",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )
    first = (out / "results.md").read_text()
    assert "mean ± std over 2 seed(s)" in first
    assert main(["bench", "--from-json", str(out / "results.json"), "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "results.md").read_text() == first


def test_transfer_refuses_a_missing_set(transfer_root, tmp_path, capsys):
    from engine.cli.main import main

    assert (
        main(
            [
                "bench",
                "--data",
                str(transfer_root),
                "--train-sets",
                "nope",
                "--methods",
                "marra18",
                "--crop",
                "64",
                "--out",
                str(tmp_path / "b"),
                "--cache",
                str(tmp_path / "cache"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope" in err[0] and "not found" in err[0]
