"""The benchmark grid and the perturbations, on the project-made tiny data set."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.bench.report import markdown_table, write_outputs
from engine.bench.runner import BenchConfig, run_bench
from engine.data.images import LoadedImage
from engine.data.perturb import PERTURBATIONS, perturb
from engine.errors import ConfigError


def _image(pixels: np.ndarray) -> LoadedImage:
    return LoadedImage(
        pixels=pixels, source="x.png", sha256="0" * 64, original_size=(64, 64), original_mode="RGB", format="PNG"
    )


def test_shift_moves_content_by_one_pixel_and_keeps_size():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    shifted = perturb([_image(pixels)], "shift1")[0].pixels
    assert shifted.shape == pixels.shape
    np.testing.assert_array_equal(shifted[1:, 1:], pixels[:-1, :-1])


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_every_perturbation_keeps_shape_and_changes_the_hash(name):
    pixels = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    out = perturb([_image(pixels)], name)[0]
    assert out.pixels.shape == (64, 64, 3) and out.pixels.dtype == np.uint8
    assert (out.sha256 == "0" * 64) == (name == "none")


def test_bench_grid_writes_json_and_markdown(tiny_dataset, tmp_path):
    from engine.storage.store import Store

    cfg = BenchConfig(
        data=str(tiny_dataset["root"]),
        real="real",
        train_sizes=(8, 16),
        methods=("dif", "marra18"),
        steps=10,
        extractor="wavelet",
        crop=64,
        border=8,
        perturb=("none", "jpeg75"),
        correlations=("plain", "shift-max"),
    )
    with Store(tmp_path / "store") as store:
        result = run_bench(cfg, store)
        again = run_bench(cfg, store)  # residuals come from the cache the second time
    assert len(result["rows"]) == 2 * 2 * 2 * 2  # sizes x methods x perturbations x correlations
    assert "residual_seconds_per_image" in result["timings"] and "residual_seconds_per_image" not in again["timings"]
    marra = [r for r in result["rows"] if r["method"] == "marra18" and r["perturb"] == "none"]
    assert all(r["accuracy"] > 0.9 for r in marra)  # the tiny generator's mean residual is obvious
    assert all(r["n_test_real"] == r["n_test_fake"] for r in result["rows"])
    js, md = write_outputs(result, tmp_path / "out")
    assert json.loads(js.read_text())["summary"]
    assert "| fake | 16 |" in md.read_text() and md.read_text() == markdown_table(result)


def test_training_variants_pool_rows_and_watermark_probe(tiny_dataset, tmp_path):
    """Perturbed and mixed training sets, the reference-pool calibrations, the watermark probe."""
    from engine.storage.store import Store

    cfg = BenchConfig(
        data=str(tiny_dataset["root"]),
        real="real",
        train_sizes=(8,),
        methods=("marra18",),
        extractor="wavelet",
        crop=64,
        border=8,
        train_variants=("default", "no-wm-match", "mixed", "blur3"),
    )
    with Store(tmp_path / "store") as store:
        result = run_bench(cfg, store)
    variants = [r["train_variant"] for r in result["rows"]]
    # the tiny generator marks nothing, so no-wm-match would repeat default and is skipped
    assert variants == ["default", "mixed", "blur3"] and not any(r["wm_matched"] for r in result["rows"])
    assert result["watermark_surveys"]["fake"][0]["generator"] is None
    by = {r["train_variant"]: r for r in result["rows"]}
    # JPEG-mixed training keeps the tiny generator's trace: the detector still works on clean images;
    # blurring (sigma 3) wipes it from the training images: their correlation with their own mean
    # falls toward 0 and the detector fails on clean images (measured mu_fake 0.38 / 0.28 / -0.04,
    # accuracy 1.0 / 1.0 / 0.21)
    assert by["default"]["accuracy"] > 0.9 and by["mixed"]["accuracy"] > 0.9
    assert 0 < by["mixed"]["mu_fake"] < by["default"]["mu_fake"]
    assert abs(by["blur3"]["mu_fake"]) < 0.5 * by["default"]["mu_fake"]
    assert by["blur3"]["accuracy"] < 0.75
    for row in result["rows"]:
        assert set(row["calibrations"]) == {"training", "pool", "pool+train-half"}
        pool = row["calibrations"]["pool"]
        if row["train_variant"] != "blur3":  # the working detectors (above)
            # real photos of unseen scenes (the pool) and watermarked real photos are not flagged:
            # the tiny generator's trace is not a watermark (measured 0.0 for all three)
            assert pool["fpr"] <= 0.1 and pool["band_fpr"] <= 0.1 and row["fpr_watermarked_real"] <= 0.1, row
            assert pool["accuracy"] > 0.9
        assert row["calibrations"]["training"]["fpr"] == pytest.approx(1 - row["acc_real"])
    assert result["reference_pools"]["pool"]["n_scenes"] >= 4
    table = markdown_table(result)
    assert (
        "False positives on unseen real scenes" in table and "Training: mixed" in table and "Training: blur3" in table
    )


def test_bench_refuses_unknown_training_variant(tiny_dataset):
    with pytest.raises(ConfigError, match="training variant"):
        run_bench(BenchConfig(data=str(tiny_dataset["root"]), train_variants=("sharpen",), crop=64))


def test_dif_bench_command_writes_outputs_and_no_partial_file(tiny_dataset, tmp_path, capsys):
    from engine.cli.main import main

    out = tmp_path / "bench"
    code = main(
        [
            "bench",
            "--protocol",
            "grid",
            "--data",
            str(tiny_dataset["root"]),
            "--train-sizes",
            "8",
            "--methods",
            "marra18",
            "--crop",
            "64",
            "--no-reference-pool",
            "--cache",
            str(tmp_path / "c"),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    result = json.loads((out / "results.json").read_text())
    assert result["config"]["reference_pool"] is False and len(result["rows"]) == 1
    assert not (out / "rows.partial.json").exists()
    assert "| fake | 8 |" in capsys.readouterr().out


def test_resume_reuses_kept_fits_and_time_limit_reports_the_rest(tiny_dataset, tmp_path):
    from engine.storage.store import Store

    cfg = BenchConfig(
        data=str(tiny_dataset["root"]),
        real="real",
        train_sizes=(8,),
        methods=("marra18", "joslin20"),
        repeats=2,
        crop=64,
        border=8,
        reference_pool=False,
    )
    kept: list[list[dict]] = []
    with Store(tmp_path / "store") as store:
        full = run_bench(cfg, store, checkpoint=kept.append)
        assert len(kept) == 4 and len(kept[-1]) == len(full["rows"]) == 4
        stopped = run_bench(cfg, store, max_minutes=0)  # no fit may start
        assert stopped["rows"] == [] and stopped["timings"]["fits_not_run"] == 4
        partial = kept[1]  # the first repeat's two fits
        resumed = run_bench(cfg, store, resume_rows=partial, max_minutes=0)
    assert resumed["rows"] == partial and resumed["timings"]["fits_not_run"] == 2
    assert "†" in markdown_table(resumed) and "2 fit(s) not run" in markdown_table(resumed)


def test_from_json_rerenders_tables_and_names_a_bad_file(tiny_dataset, tmp_path, capsys):
    from engine.cli.main import main

    out = tmp_path / "bench"
    assert (
        main(
            [
                "bench",
                "--protocol",
                "grid",
                "--data",
                str(tiny_dataset["root"]),
                "--train-sizes",
                "8",
                "--methods",
                "marra18",
                "--crop",
                "64",
                "--perturb",
                "none,jpeg75",
                "--no-reference-pool",
                "--cache",
                str(tmp_path / "c"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    first = (out / "results.md").read_text()
    assert "Robustness, marra18, N=8" in first
    assert main(["bench", "--from-json", str(out / "results.json"), "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "results.md").read_text() == first
    (tmp_path / "bad.json").write_text("{}")
    capsys.readouterr()
    assert main(["bench", "--from-json", str(tmp_path / "bad.json"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.json" in err[0]
