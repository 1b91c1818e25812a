"""The reference pool of real photos mu_real is calibrated on: built from photos the project can always get."""

from __future__ import annotations

import numpy as np
import pytest

from engine.api import calibrate_on_pool, rho_for, train_from_folders
from engine.cli.main import main
from engine.data.reference_pool import DEBIAN_PHOTOS, SKIMAGE_PHOTOS, default_pool, folder_pool, tiles_of
from engine.method.config import TrainConfig
from tests.conftest import photo_tiles, write_pngs


@pytest.fixture(scope="module")
def pool64():
    return default_pool(tile=64)


def test_default_pool_is_deterministic_and_tiled(pool64):
    again = default_pool(tile=64)
    assert [im.sha256 for im in again.images] == [im.sha256 for im in pool64.images]
    assert all(im.pixels.shape == (64, 64, 3) and im.pixels.dtype == np.uint8 for im in pool64.images)
    summary = pool64.summary()
    assert {f"skimage-{n}" for n in SKIMAGE_PHOTOS} <= set(summary["scenes"])
    assert summary["n_scenes"] == len(SKIMAGE_PHOTOS) + len(DEBIAN_PHOTOS) - len(summary["missing"])
    assert summary["n_images"] == len(pool64.images) == len(pool64.scenes)


def test_missing_wallpapers_are_reported_not_fatal(tmp_path):
    pool = default_pool(tile=64, debian_root=tmp_path)
    assert len(pool.missing) == len(DEBIAN_PHOTOS) and all("Debian package" in m for m in pool.missing)
    assert pool.summary()["n_scenes"] == len(SKIMAGE_PHOTOS)


def test_flat_tiles_are_skipped():
    flat = np.full((512, 512, 3), 128, np.uint8)
    assert tiles_of(flat, 128) == []
    noisy = np.random.default_rng(0).integers(0, 255, (512, 768, 3)).astype(np.uint8)
    assert len(tiles_of(noisy, 128, max_tiles=5)) == 5


def test_folder_pool_groups_tiles_into_scenes(tmp_path):
    write_pngs(tmp_path / "mine", photo_tiles(64, names=("coffee", "chelsea"), per_photo=3))
    pool = folder_pool(tmp_path / "mine", crop=64)
    assert pool.summary()["n_scenes"] == 2 and len(pool.images) == 6


def test_pool_calibration_sets_mu_real_and_records_the_pool(tiny_dataset, store, pool64):
    config = TrainConfig(method="marra18", crop=64, border=8)
    plain = train_from_folders("m", tiny_dataset["real"], tiny_dataset["fake"], config, store=store)["fingerprint"]
    training_mu = plain.mu_real
    result = train_from_folders(
        "m-pool", tiny_dataset["real"], tiny_dataset["fake"], config, store=store, reference_pool=pool64
    )
    fp = result["fingerprint"]
    expected = rho_for([fp], pool64.images, store)[:, 0].mean()
    assert fp.mu_real == pytest.approx(expected, abs=1e-9)
    assert fp.reference_pool["mu_real_training"] == pytest.approx(training_mu, abs=1e-9)
    assert fp.reference_pool["n_scenes"] == pool64.summary()["n_scenes"]
    assert fp.calibration["source"] == "reference-pool"
    assert "accuracy_training_mu_real" in result["test_metrics"]
    stored = store.load("m-pool")
    assert stored.mu_real == pytest.approx(fp.mu_real) and stored.reference_pool == fp.reference_pool
    # calibrating again keeps the training-photo mu_real on record, not the previous pool's
    calibrate_on_pool(stored, pool64, store)
    assert stored.reference_pool["mu_real_training"] == pytest.approx(training_mu, abs=1e-9)


def test_cli_names_a_missing_pool_folder(tiny_dataset, tmp_path, capsys):
    code = main(
        [
            "train",
            "--name",
            "x",
            "--real",
            str(tiny_dataset["real"]),
            "--fake",
            str(tiny_dataset["fake"]),
            "--method",
            "marra18",
            "--crop",
            "64",
            "--cache",
            str(tmp_path / "c"),
            "--reference-pool",
            str(tmp_path / "nope"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "nope" in err[0] and "reference-pool" in err[0]
