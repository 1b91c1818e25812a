"""Cross-detection on the tiny zoo: shape, diagonal = detection, batched = one model at a time."""
from __future__ import annotations

import json

import numpy as np
import pytest

from engine.api import evaluate
from engine.cross import CrossResult, cross_detect, load_test_sets
from engine.errors import ConfigError
from zoo_fixtures import tiny_zoo


@pytest.fixture(scope="module")
def zoo():
    store, manifest = tiny_zoo()
    fps = [store.load(n) for n in manifest["models"]]
    return store, fps, cross_detect(fps, store)


def test_shape_names_and_counts(zoo):
    _, fps, result = zoo
    m = len(fps)
    assert result.names == [fp.name for fp in fps]
    for arr in (result.accuracy, result.acc_fake, result.mean_rho_fake, result.mean_rho_real):
        assert arr.shape == (m, m)
    assert result.n_test == [len(fp.test_files["real"]) + len(fp.test_files["fake"]) for fp in fps]
    assert np.all((result.accuracy >= 0) & (result.accuracy <= 1))


def test_diagonal_is_each_models_own_detection_accuracy(zoo):
    _, fps, result = zoo
    for i, fp in enumerate(fps):
        assert result.accuracy[i, i] == pytest.approx(fp.test_metrics["accuracy"], abs=1e-9)
        assert result.accuracy[i, i] > 0.8  # each zoo detector works on its own held-out images


def test_batched_matrix_equals_one_by_one_evaluation(zoo):
    store, fps, result = zoo
    sets = load_test_sets(fps)
    for i in (0, 5, 7):
        for j in (0, 5, 7):
            real, fake = sets[fps[j].name]
            single = evaluate(fps[i], real, fake, store)
            assert result.accuracy[i, j] == pytest.approx(single["accuracy"], abs=1e-9)
            assert result.acc_fake[i, j] == pytest.approx(single["acc_fake"], abs=1e-9)


def test_unrelated_architecture_is_not_cross_detected(zoo):
    _, fps, result = zoo
    names = result.names
    k = names.index("zoo-shuffle")
    base = names.index("zoo-base")
    mutual = min(result.accuracy[k, base], result.accuracy[base, k])
    assert mutual < 0.65
    ft = names.index("zoo-ft-a")
    assert min(result.accuracy[base, ft], result.accuracy[ft, base]) > 0.75


def test_explicit_test_sets_give_the_same_matrix(zoo):
    store, fps, result = zoo
    again = cross_detect(fps, store, test_sets=load_test_sets(fps))
    np.testing.assert_allclose(again.accuracy, result.accuracy)


def test_dict_roundtrip_and_frame(zoo):
    _, _, result = zoo
    data = json.loads(json.dumps(result.to_dict()))
    back = CrossResult.from_dict(data)
    assert back.names == result.names
    np.testing.assert_allclose(back.accuracy, result.accuracy)
    np.testing.assert_allclose(back.mean_rho_real, result.mean_rho_real)
    frame = result.to_frame()
    assert list(frame.index) == result.names and list(frame.columns) == result.names
    assert frame.loc["zoo-base", "zoo-shuffle"] == result.accuracy[0, 7]
    with pytest.raises(ConfigError):
        CrossResult.from_dict({**data, "accuracy": [[1.0]]})


def test_models_without_or_with_missing_test_files_are_config_errors(zoo, tmp_path):
    store, fps, _ = zoo
    fp = store.load("zoo-base")
    fp.test_files = {}
    with pytest.raises(ConfigError, match="no held-out test files"):
        cross_detect([fp], store)
    fp.test_files = {"real": [str(tmp_path / "gone.png")], "fake": [str(tmp_path / "gone2.png")]}
    with pytest.raises(ConfigError, match="missing"):
        cross_detect([fp], store)
    with pytest.raises(ConfigError):
        cross_detect([], store)
