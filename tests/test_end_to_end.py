"""End to end on data the project makes: real photo tiles vs. a tiny transposed-conv generator.

DIF is trained through the same path as ``dif train`` (seeded group-aware halves), then judged on
the held-out halves, which share no source photo with the training images.
"""

from __future__ import annotations

import pytest

from engine.api import train_from_folders
from engine.method.config import TrainConfig


@pytest.fixture(scope="module")
def dif_result(tiny_dataset, tmp_path_factory):
    from engine.storage.store import Store

    store = Store(tmp_path_factory.mktemp("e2e_store"))
    config = TrainConfig(method="dif", extractor="wavelet", crop=64, border=8, steps=150, batch=32, seed=0)
    return train_from_folders("tiny-dif", tiny_dataset["real"], tiny_dataset["fake"], config, store=store), store


def test_dif_separates_generated_from_real_on_held_out_images(dif_result):
    result, _ = dif_result
    metrics = result["test_metrics"]
    assert metrics["n_real"] > 10 and metrics["n_fake"] > 10
    assert metrics["accuracy"] >= 0.8, metrics
    assert metrics["auc"] >= 0.85, metrics


def test_learned_means_are_apart_and_stored(dif_result):
    result, store = dif_result
    fp = store.load("tiny-dif")
    assert abs(fp.mu_fake - fp.mu_real) > 0.005  # at least half the margin m = 0.01
    assert fp.test_metrics == result["test_metrics"]
    assert fp.history and fp.history[-1]["step"] == 150
    assert set(fp.test_files) == {"real", "fake"} and fp.test_files["fake"]


def test_held_out_halves_share_no_source_photo(tiny_dataset):
    from engine.api import split_folder
    from engine.data.splits import group_of

    train, test = split_folder(tiny_dataset["real"], seed=0)
    assert {group_of(p) for p in train}.isdisjoint({group_of(p) for p in test})
