"""Cross-detection on the tiny zoo: shape, diagonal = detection, batched = one model at a time."""

from __future__ import annotations

import json

import numpy as np
import pytest
from zoo_fixtures import tiny_zoo

from engine.api import evaluate
from engine.errors import ConfigError
from engine.lineage.cross import CrossResult, cross_detect, load_test_sets


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
    # every model's held-out real photos are the same files here, so each detector's real-side
    # accuracy, 2 * balanced accuracy - acc_fake, must be one number along its row
    assert len({tuple(sorted(fp.test_files["real"])) for fp in fps}) == 1
    acc_real = 2 * result.accuracy - result.acc_fake
    np.testing.assert_allclose(acc_real, acc_real[:, :1].repeat(m, axis=1), atol=1e-9)


def test_each_detector_beats_its_score_on_unrelated_families(zoo):
    """Row i: detector i on its own test set vs on every test set of another family (no shared weights)."""
    _, fps, result = zoo
    family = {name: fam for fam, members in tiny_zoo()[1]["truth"]["families"].items() for name in members}
    for i, name in enumerate(result.names):
        others = [j for j, other in enumerate(result.names) if family[other] != family[name]]
        assert others
        # measured: the smallest gap is zoo-base on zoo-seed2 (0.97 vs 0.91)
        assert result.accuracy[i, i] > result.accuracy[i, others].max(), (name, result.accuracy[i])
        # in correlation the gap is wide: own generated images ~0.6, other families' <= 0.2
        assert result.mean_rho_fake[i, i] > 2 * result.mean_rho_fake[i, others].max(), (name, result.mean_rho_fake[i])
        assert result.mean_rho_fake[i, i] > result.mean_rho_real[i, i] + 0.3


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


def test_models_of_different_crops_share_one_matrix(zoo, tmp_path):
    """A 64-pixel detector cannot judge the 32-pixel zoo images (NaN); the zoo's detectors judge its 64-pixel ones."""
    from PIL import Image
    from skimage import data

    from engine.api import train_fingerprint
    from engine.data.images import load_image
    from engine.lineage.infer import infer_lineage
    from engine.method.config import TrainConfig

    store, fps, _ = zoo
    photo = data.rocket()
    tiles = [photo[r : r + 64, c : c + 64] for r in range(0, 384, 64) for c in range(0, 640, 64)][:40]
    checker = (np.indices((64, 64)).sum(axis=0) % 2 * 12 - 6)[:, :, None]
    paths = {"real": [], "fake": []}
    for k, tile in enumerate(tiles):
        for kind, arr in (("real", tile), ("fake", np.clip(tile.astype(int) + checker, 0, 255).astype(np.uint8))):
            path = tmp_path / f"{kind}_{k}.png"
            Image.fromarray(np.ascontiguousarray(arr)).save(path)
            paths[kind].append(str(path))
    real = [load_image(p, crop=None) for p in paths["real"]]
    fake = [load_image(p, crop=None) for p in paths["fake"]]
    cfg = TrainConfig(method="marra18", extractor="wavelet", crop=64, border=0)
    big, _ = train_fingerprint("checker64", real[:20], fake[:20], cfg, store, reuse=False)
    big.test_files = {"real": paths["real"][20:], "fake": paths["fake"][20:]}
    result = cross_detect([fps[0], fps[7], big], store)
    assert result.accuracy[2, 2] > 0.8
    assert np.isnan(result.accuracy[2, 0]) and np.isnan(result.accuracy[2, 1])
    assert not np.isnan(result.accuracy[0, 2]) and not np.isnan(result.accuracy[1, 2])
    data_dict = json.loads(json.dumps(result.to_dict(), allow_nan=False))  # strict JSON: NaN written as null
    assert data_dict["accuracy"][2][0] is None
    assert np.isnan(CrossResult.from_dict(data_dict).accuracy[2, 0])
    graph = infer_lineage(result)
    assert not graph.has_edge("checker64", "zoo-base") and not graph.has_edge("zoo-base", "checker64")


def test_jpeg_test_images_are_read_as_detect_reads_them(zoo):
    """A JPEG in a test set is read with each model's JPEG reading, so every cell equals what
    ``dif detect`` says of the same files; PNG cells are untouched."""
    from engine.api import detect, jpeg_reading_of
    from engine.data.perturb import perturb

    store, fps, plain_result = zoo
    models = [fps[0], fps[5]]
    assert all(jpeg_reading_of(fp) is not None for fp in models)  # else this test would test nothing
    sets = load_test_sets(models)
    jpeg_sets = {name: (real, perturb(fake, "jpeg90")) for name, (real, fake) in sets.items()}
    result = cross_detect(models, store, test_sets=jpeg_sets)
    for i, fp in enumerate(models):
        for j, name in enumerate(result.names):
            real, fake = jpeg_sets[name]
            rows_fake, rows_real = detect(fp, fake, store), detect(fp, real, store)
            assert all("JPEG" in row.get("reading", "") for row in rows_fake)
            assert not any("JPEG" in row.get("reading", "") for row in rows_real)  # PNGs: no JPEG reading
            flagged_fake = np.mean([row["label"] == "generated" for row in rows_fake])
            flagged_real = np.mean([row["label"] == "generated" for row in rows_real])
            assert result.acc_fake[i, j] == pytest.approx(flagged_fake, abs=1e-9)
            assert result.accuracy[i, j] == pytest.approx((flagged_fake + 1 - flagged_real) / 2, abs=1e-9)
            assert result.mean_rho_fake[i, j] == pytest.approx(np.mean([row["rho"] for row in rows_fake]), abs=1e-6)
    # the real side is PNG: those means are the plain matrix's
    k = [fp.name for fp in fps]
    for i, fp in enumerate(models):
        for j, name in enumerate(result.names):
            assert result.mean_rho_real[i, j] == pytest.approx(
                plain_result.mean_rho_real[k.index(fp.name), k.index(name)], abs=1e-6
            )
