"""Suspects as they arrive: degraded copies for fitting, alignment-free statistics, tiles, format bias."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import photo_tiles, write_pngs
from PIL import Image

from engine.method.config import TrainConfig

TINY = dict(extractor="wavelet", crop=64, border=8)


def _loaded(pixels: np.ndarray, name: str = "x.png"):
    from engine.data.images import LoadedImage, content_hash

    return LoadedImage(pixels, name, content_hash(pixels.tobytes()), (pixels.shape[1], pixels.shape[0]), "RGB", "PNG")


# ---------------------------------------------------------------- tiles
@pytest.mark.parametrize(
    "h,w,max_tiles,count",
    [(256, 256, 9, 1), (300, 300, 9, 1), (512, 512, 9, 4), (1024, 768, 9, 9), (3000, 3000, 1, 1), (600, 300, 9, 2)],
)
def test_tile_boxes_cover_large_images_on_the_8_pixel_grid(h, w, max_tiles, count):
    from engine.data.tiles import centre_box, tile_boxes

    boxes = tile_boxes(h, w, 256, max_tiles)
    assert len(boxes) == count
    assert len(set(boxes)) == len(boxes)
    for top, left, bh, bw in boxes:
        assert (bh, bw) == (256, 256) and 0 <= top <= h - 256 and 0 <= left <= w - 256
        if count > 1:
            assert top % 8 == 0 and left % 8 == 0
    if count == 1:
        assert boxes == [centre_box(h, w, 256)]


def test_a_large_image_is_scored_on_its_tiles_and_its_rho_is_their_mean(tiny_dataset, store):
    """Four generated 64-px images side by side: the 128-px mosaic's rho is the mean of the four images' rho."""
    from engine.api import detect, train_from_folders
    from engine.data.images import list_images, load_images

    fp = train_from_folders(
        "m",
        tiny_dataset["real"],
        tiny_dataset["fake"],
        TrainConfig(method="marra18", **TINY),
        8,
        store,
        evaluate_test=False,
    )["fingerprint"]
    parts, _ = load_images(list_images(tiny_dataset["fake"])[:4], crop=None)
    top, bottom = (
        np.concatenate([parts[0].pixels, parts[1].pixels], axis=1),
        np.concatenate([parts[2].pixels, parts[3].pixels], axis=1),
    )
    mosaic = np.concatenate([top, bottom], axis=0)
    # at the grid only: with offsets each tile's image could take the other reading, and a mean mixes two
    [row] = detect(fp, [_loaded(mosaic, "mosaic.png")], store, max_tiles=4, offsets=False)
    singles = detect(fp, parts, store, offsets=False)
    assert sorted(map(tuple, row["tiles"])) == [(0, 0, 64, 64), (0, 64, 64, 64), (64, 0, 64, 64), (64, 64, 64, 64)]
    assert row["rho"] == pytest.approx(np.mean([r["rho"] for r in singles]), abs=1e-5)
    assert sorted(row["tile_rho"]) == pytest.approx(sorted(r["rho"] for r in singles), abs=1e-5)
    [centre] = detect(fp, [_loaded(mosaic, "mosaic.png")], store, max_tiles=1, offsets=False)
    assert centre["tiles"] == [[32, 32, 64, 64]] and "tile_rho" not in centre
    assert centre["rho"] != pytest.approx(row["rho"], abs=1e-4)


# ---------------------------------------------------------------- degraded copies
def test_degraded_copies_are_seeded_named_and_change_the_pixels():
    from engine.data.augment import degraded_copies

    [(_, tile)] = photo_tiles(64, names=("astronaut",), per_photo=1)
    im = _loaded(tile)
    a, b = degraded_copies([im], "jpeg", 3, seed=0), degraded_copies([im], "jpeg", 3, seed=0)
    assert [x.sha256 for x in a] == [x.sha256 for x in b] and all(
        np.array_equal(x.pixels, y.pixels) for x, y in zip(a, b)
    )
    assert len({x.sha256 for x in a} | {im.sha256}) == 4  # each copy is its own residual-cache entry
    assert all(x.pixels.shape == tile.shape and not np.array_equal(x.pixels, tile) for x in a)
    assert all(any(n.startswith("augmented: jpeg") for n in x.notes) for x in a)
    assert [x.sha256 for x in degraded_copies([im], "jpeg", 3, seed=1)] != [x.sha256 for x in a]
    assert degraded_copies([im], "none", 3, seed=0) == []


def test_unknown_augmentation_is_a_config_error():
    from engine.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown augmentation 'jpg'"):
        TrainConfig(augment="jpg")


def test_augmented_fit_uses_the_copies_and_keeps_old_train_keys(tiny_dataset, store):
    """An augmented fit is another fingerprint (other key, other tensor); without augmentation the key
    does not mention it, so fingerprints stored before the option existed are still found."""
    from engine.api import train_from_folders, train_key
    from engine.residuals.registry import get_extractor

    plain = train_from_folders(
        "p",
        tiny_dataset["real"],
        tiny_dataset["fake"],
        TrainConfig(method="marra18", **TINY),
        8,
        store,
        evaluate_test=False,
    )["fingerprint"]
    before = len(store.residuals)
    aug = train_from_folders(
        "a",
        tiny_dataset["real"],
        tiny_dataset["fake"],
        TrainConfig(method="marra18", augment="jpeg", augment_copies=2, **TINY),
        8,
        store,
        evaluate_test=False,
    )["fingerprint"]
    assert (
        len(store.residuals) - before >= 2 * 8
    )  # copies of each fit image of both classes are cached (equal copies share one entry)
    assert aug.train_key != plain.train_key
    assert not torch.allclose(aug.tensor, plain.tensor)
    ext = get_extractor("wavelet", torch.device("cpu"))
    img = [_loaded(photo_tiles(64, names=("coffee",), per_photo=1)[0][1])]
    base = train_key(img, img, TrainConfig(method="marra18", **TINY), ext.cache_id)
    assert base == train_key(img, img, TrainConfig(method="marra18", augment_copies=5, **TINY), ext.cache_id)
    assert base != train_key(img, img, TrainConfig(method="marra18", resave_jpeg=90, **TINY), ext.cache_id)


# ---------------------------------------------------------------- statistics
def _periodic_case(shift: tuple[int, int]):
    g = torch.Generator().manual_seed(0)
    pattern = torch.randn(1, 3, 8, 8, generator=g).repeat(1, 1, 30, 30)
    residuals = pattern.repeat(6, 1, 1, 1) + 4.0 * torch.randn(6, 3, 240, 240, generator=g)
    noise_only = 4.0 * torch.randn(6, 3, 240, 240, generator=g)
    return torch.roll(residuals, shift, dims=(2, 3)), torch.roll(noise_only, shift, dims=(2, 3)), pattern


@pytest.mark.parametrize("mode", ["plain", "periodic", "phase"])
def test_periodic_statistics_see_a_faint_8_pixel_pattern(mode):
    from engine.method.correlation import rho_matrix

    with_pattern, without, f = _periodic_case((0, 0))
    hit, miss = rho_matrix(with_pattern, f, mode)[:, 0], rho_matrix(without, f, mode)[:, 0]
    assert hit.min() > miss.max()
    if mode != "plain":  # averaging 900 blocks lifts a pattern at 1/4 of the noise far above the null
        assert hit.min() > 0.7 and miss.abs().max() < 0.35


def test_phase_statistic_does_not_depend_on_where_the_crop_starts():
    from engine.method.correlation import rho_matrix

    aligned, _, f = _periodic_case((0, 0))
    shifted, noise, _ = _periodic_case((3, 5))
    assert rho_matrix(shifted, f, "phase")[:, 0] == pytest.approx(
        rho_matrix(aligned, f, "phase")[:, 0].tolist(), abs=0.03
    )
    assert rho_matrix(shifted, f, "periodic")[:, 0].abs().max() < 0.5 * rho_matrix(aligned, f, "periodic")[:, 0].min()
    assert rho_matrix(shifted, f, "phase")[:, 0].min() > rho_matrix(noise, f, "phase")[:, 0].max()


def test_a_trained_fingerprint_has_its_generated_side_positive_and_switches_statistic_without_refitting(
    tiny_dataset, store
):
    from engine.api import train_from_folders

    cfg = TrainConfig(method="dif", steps=20, batch=16, seed=3, **TINY)
    first = train_from_folders("d", tiny_dataset["real"], tiny_dataset["fake"], cfg, 8, store, evaluate_test=False)
    fp = first["fingerprint"]
    assert not first["cached"] and fp.mu_fake > fp.mu_real
    again = train_from_folders(
        "d-phase",
        tiny_dataset["real"],
        tiny_dataset["fake"],
        TrainConfig(**{**cfg.to_dict(), "correlation": "phase"}),
        8,
        store,
        evaluate_test=False,
    )
    ph = again["fingerprint"]
    assert again["cached"] and ph.correlation == "phase" and torch.equal(ph.tensor, fp.tensor)
    assert (ph.mu_real, ph.mu_fake) != (fp.mu_real, fp.mu_fake)  # re-calibrated under the new statistic
    assert store.load("d").correlation == "plain" and store.load("d-phase").correlation == "phase"


def _recomputed_template(fp, listed, degradations: tuple[str, ...], store, leans: bool = False):
    """The reader template a card should hold: Fisher's discriminant of its fit images' degraded copies
    (``listed`` turns the card's file hashes into images), recomputed here from the card's own lists.
    With ``leans`` (JPEG copies), the discriminant also reads their coefficient sign leans, and its
    weights on them come back too."""
    from engine.api import residuals_of
    from engine.data.perturb import perturb
    from engine.method.jpeg_coefficients import sign_leans
    from engine.method.jpeg_reader import fit_reader, periodic_features

    def copies(images: list) -> torch.Tensor:
        residuals = [residuals_of(perturb(images, q), fp.extractor, fp.crop, fp.border, store) for q in degradations]
        return torch.cat(residuals)

    def leaned(images: list) -> np.ndarray | None:
        return sign_leans([im for q in degradations for im in perturb(images, q)]) if leans else None

    real, fake = listed(fp.train_files["real"]), listed(fp.train_files["fake"])
    template, weights = fit_reader(
        periodic_features(copies(real)), periodic_features(copies(fake)), leaned(real), leaned(fake)
    )
    return (template, weights) if leans else template


def test_a_jpeg_is_read_with_the_cards_jpeg_reader(tiny_dataset, tmp_path, store):
    """The JPEG reader is the template fitted on the fit images re-saved at 90 / 75 / 50, read with
    ``periodic-rgb`` and calibrated on the calibration images re-saved the same ways (pooled); detect
    uses it on JPEG files only, and a card without a JPEG reading reads every file the plain way."""
    from dataclasses import replace

    from sklearn.metrics import roc_auc_score

    from engine.api import (
        JPEG_CHECK_IMAGES,
        JPEG_CHECKS,
        calibrate_on_pool,
        detect,
        jpeg_reading_of,
        rho_for,
        train_fingerprint,
        train_from_folders,
    )
    from engine.data.images import list_images, load_images
    from engine.data.perturb import JPEG_RESAVES, perturb
    from engine.data.reference_pool import images_pool
    from engine.errors import ConfigError
    from engine.method.jpeg_coefficients import sign_leans

    cfg = TrainConfig(method="dif", steps=20, batch=16, seed=5, **TINY)
    fp = train_from_folders("j", tiny_dataset["real"], tiny_dataset["fake"], cfg, 8, store, evaluate_test=False)[
        "fingerprint"
    ]
    record = fp.jpeg_reading
    assert record["statistic"] == "periodic-rgb" and record["fitted_on"]["qualities"] == [90, 75, 50]
    real, _ = load_images(list_images(tiny_dataset["real"]), crop=None)
    fake, _ = load_images(list_images(tiny_dataset["fake"]), crop=None)
    by_hash = {im.sha256: im for im in real + fake}

    def listed(shas: list[str]) -> list:
        return [by_hash[h] for h in shas][:JPEG_CHECK_IMAGES]

    # the template is the discriminant of the fit images' re-saves, recomputed from the card's own file lists
    template, weights = _recomputed_template(fp, listed, JPEG_CHECKS, store, leans=True)
    assert np.asarray(record["template"]) == pytest.approx(template, abs=1e-5)
    assert len(record["coefficient_weights"]) == 63  # and its weights on the JPEGs' coefficient sign leans
    assert np.asarray(record["coefficient_weights"]) == pytest.approx(weights, rel=1e-5, abs=1e-9)
    # and its means are its correlations with the calibration images re-saved the three ways, pooled
    reader = jpeg_reading_of(fp)
    for side, mu in (("real", reader.mu_real), ("fake", reader.mu_fake)):
        images = {q: perturb(listed(fp.calibration_set[side]), q) for q in JPEG_CHECKS}
        assert mu == pytest.approx(np.mean(rho_for([reader], sum(images.values(), []), store)), abs=1e-6)
        rows = {q: detect(fp, images[q], store) for q in JPEG_CHECKS}  # the reader at every quality
        assert {r["reading"] for q in JPEG_CHECKS for r in rows[q]} == {
            f"periodic-rgb (JPEG quality {JPEG_RESAVES[q]})" for q in JPEG_CHECKS
        }
    assert reader.mu_fake > reader.mu_real
    # its rho is the template's periodic-rgb correlation plus the file's sign leans times the weights
    q75_cal = perturb(listed(fp.calibration_set["fake"]), "jpeg75")
    template_only = rho_for([replace(reader, coefficient_weights=None)], q75_cal, store)[:, 0]
    leans = sign_leans(q75_cal) @ np.asarray(record["coefficient_weights"])
    assert rho_for([reader], q75_cal, store)[:, 0] == pytest.approx(template_only + leans, abs=1e-9)
    assert np.abs(leans).max() > 0.01 * np.abs(template_only).max()  # the leans move the score
    # it tells apart JPEG-75 re-saves of images nothing was fitted or calibrated on
    used = {h for files in (fp.train_files, fp.calibration_set) for side in ("real", "fake") for h in files[side]}
    held_real = [im for im in real if im.sha256 not in used]
    held_fake = [im for im in fake if im.sha256 not in used]
    rho = rho_for([reader], perturb(held_real, "jpeg75") + perturb(held_fake, "jpeg75"), store)[:, 0]
    assert len(held_real) > 20 and len(held_fake) > 20
    assert roc_auc_score(np.r_[np.zeros(len(held_real)), np.ones(len(held_fake))], rho) > 0.9

    # a card with the earlier JPEG reading (no template) gains the reader on its next cache hit, without a refit
    reader_only = ("template", "coefficient_weights", "fitted_on", "calibrated_on")
    earlier = {**{k: v for k, v in record.items() if k not in reader_only}, "statistic": "periodic"}
    store.save(replace(store.load("j"), jpeg_reading=earlier))
    again = train_from_folders("j", tiny_dataset["real"], tiny_dataset["fake"], cfg, 8, store, evaluate_test=False)
    assert again["cached"] and torch.equal(again["fingerprint"].tensor, fp.tensor)
    assert json.dumps(store.load("j").jpeg_reading, sort_keys=True) == json.dumps(record, sort_keys=True)

    # a pool re-fits the offset reading but leaves the reader, which is calibrated among JPEGs
    pool = images_pool("photos", real, [im.source for im in real])
    offset_before = dict(fp.offset_reading)
    calibrate_on_pool(fp, pool, store)
    assert fp.jpeg_reading == record and fp.offset_reading != offset_before

    # too few images to hold calibration images out: the earlier reading, the same fit under periodic
    small, _ = train_fingerprint("s", real[:5], fake[:5], cfg, store)
    assert small.calibration_set["source"] != "held out of fitting"
    assert small.jpeg_reading["statistic"] == "periodic" and "template" not in small.jpeg_reading
    assert torch.equal(jpeg_reading_of(small).tensor, small.tensor)

    fake, _ = load_images(list_images(tiny_dataset["fake"]), crop=None)
    named = [(im.source.rsplit("/", 1)[-1][:-4], im.pixels) for im in fake[:4]]
    q75, _ = load_images(list_images(_jpeg_folder(tmp_path / "q75", named, quality=75)), crop=None)
    q95, _ = load_images(list_images(_jpeg_folder(tmp_path / "q95", named, quality=95)), crop=None)
    assert [im.jpeg_quality for im in q75] == pytest.approx([75] * 4, abs=1)
    rows = detect(fp, q75 + q95 + fake[:2], store, offsets=False)  # the PNGs at the grid: plain
    # the reading alone reads every file the same way, template and sign leans
    as_readings = detect(reader, q75 + q95, store)
    as_plain = detect(replace(fp, jpeg_reading={}), q75 + q95 + fake[:2], store, offsets=False)
    assert [r["reading"] for r in rows[:8]] == ["periodic-rgb (JPEG quality 75)"] * 4 + [
        "periodic-rgb (JPEG quality 95)"
    ] * 4
    assert [r["rho"] for r in rows[:8]] == pytest.approx([r["rho"] for r in as_readings], abs=1e-6)
    assert [r["label"] for r in rows[:8]] == [r["label"] for r in as_readings]
    assert all("reading" not in r for r in rows[8:] + as_plain)  # PNG, or a card without a JPEG reading: plain
    assert [r["rho"] for r in rows[8:]] == pytest.approx([r["rho"] for r in as_plain[8:]], abs=1e-9)

    # fitted on JPEGs (here both classes re-saved at 75), the plain reading already reads them
    resaved_cfg = TrainConfig(method="marra18", resave_jpeg=75, **TINY)
    resaved = train_from_folders(
        "r", tiny_dataset["real"], tiny_dataset["fake"], resaved_cfg, 8, store, evaluate_test=False
    )
    assert resaved["fingerprint"].jpeg_reading == {} and jpeg_reading_of(resaved["fingerprint"]) is None
    assert all("reading" not in r for r in detect(resaved["fingerprint"], q75, store))

    broken = replace(fp, jpeg_reading={**fp.jpeg_reading, "mu_real": "x"})
    with pytest.raises(ConfigError, match="'j': its card's jpeg_reading is malformed"):
        detect(broken, q75, store)
    for template in ([[1.0]], np.full((3, 8, 8), np.nan).tolist(), np.zeros((3, 8, 8)).tolist()):
        with pytest.raises(ConfigError, match="'j': its card's jpeg_reading is malformed"):
            detect(replace(fp, jpeg_reading={**fp.jpeg_reading, "template": template}), q75, store)
    for weights in ([1.0] * 62, [float("nan")] * 63, "x"):
        with pytest.raises(ConfigError, match="'j': its card's jpeg_reading is malformed"):
            detect(replace(fp, jpeg_reading={**fp.jpeg_reading, "coefficient_weights": weights}), q75, store)


def test_a_card_measures_its_jpeg_reading_on_its_own_calibration_images_resaved(tiny_dataset, tmp_path, store):
    """The rates a JPEG suspect is read against are detect's own labels on the calibration images
    re-saved at 90 / 75 / 50; a JPEG row carries the nearest and says it in a warning."""
    from dataclasses import replace

    from engine.api import JPEG_CHECK_IMAGES, detect, train_from_folders
    from engine.data.images import list_images, load_images
    from engine.data.perturb import perturb
    from engine.errors import ConfigError

    cfg = TrainConfig(method="dif", steps=20, batch=16, seed=5, **TINY)
    fp = train_from_folders("r", tiny_dataset["real"], tiny_dataset["fake"], cfg, 8, store, evaluate_test=False)[
        "fingerprint"
    ]
    rates = fp.jpeg_reading["by_quality"]
    assert [r["quality"] for r in rates] == [90, 75, 50]
    assert all(r["cut_set_here"] for r in rates)  # the JPEG reader's cut was set on these re-saves
    real, _ = load_images(list_images(tiny_dataset["real"]), crop=None)
    fake, _ = load_images(list_images(tiny_dataset["fake"]), crop=None)
    by_hash = {im.sha256: im for im in real + fake}  # in the card's calibration order, as measured
    cal_real = [by_hash[h] for h in fp.calibration_set["real"]][:JPEG_CHECK_IMAGES]
    cal_fake = [by_hash[h] for h in fp.calibration_set["fake"]][:JPEG_CHECK_IMAGES]
    assert (rates[0]["n_real"], rates[0]["n_generated"]) == (len(cal_real), len(cal_fake)) and cal_real and cal_fake
    for r in rates:
        for images, key in ((cal_real, "flagged_real"), (cal_fake, "flagged_generated")):
            rows = detect(fp, perturb(images, f"jpeg{r['quality']}"), store)
            assert all(row["jpeg_rates"] == r for row in rows)
            assert r[key] == pytest.approx(np.mean([row["label"] == "generated" for row in rows]), abs=1e-4)
    assert store.load("r").jpeg_reading["by_quality"] == rates  # stored with the card

    named = [(im.source.rsplit("/", 1)[-1][:-4], im.pixels) for im in fake[:2]]
    q95, _ = load_images(list_images(_jpeg_folder(tmp_path / "q95", named, quality=95)), crop=None)
    rows = detect(fp, q95 + fake[:1], store)
    assert [row["jpeg_rates"]["quality"] for row in rows[:2]] == [90, 90]  # the nearest measured quality
    assert any("re-saved at JPEG quality 90" in w for w in rows[0]["warnings"])
    assert "jpeg_rates" not in rows[2]  # a PNG is read the plain way, against the clean calibration
    from engine.lineage.attribution import attribute

    attributed = attribute(q95, [fp], store)
    assert any(result.verdict == "r" for result in attributed)  # else the loop below would check nothing
    for result in attributed:  # attribution says the same of a verdict it reaches
        said = [w for w in result.warnings if "re-saved at JPEG quality 90" in w]
        assert said == ([f"r, read against its held-out images re-saved at JPEG quality 90, flagged "
                         f"{rates[0]['flagged_real']:.0%} of {rates[0]['n_real']} real photos and "
                         f"{rates[0]['flagged_generated']:.0%} of {rates[0]['n_generated']} generated images "
                         "(its cut was set on these real photos)"]
                        if result.verdict == "r" else [])  # fmt: skip
    broken = replace(fp, jpeg_reading={**fp.jpeg_reading, "by_quality": [{"quality": "x"}]})
    with pytest.raises(ConfigError, match="'r': its card's jpeg_reading is malformed"):
        detect(broken, q95, store)


def test_the_jpeg_reader_template_finds_a_faint_periodic_pattern_and_reads_as_periodic_rgb(store):
    """On residuals of real photos, half of them carrying a faint 3 x 8 x 8 pattern, the fitted template
    points along the pattern, and ``periodic-rgb`` with the tiled template is the discriminant's score."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    from engine.api import residuals_of
    from engine.method.correlation import periodic_part, rho_matrix, standardize
    from engine.method.jpeg_reader import fit_reader, periodic_features, tile_template

    images = [_loaded(pixels, f"{name}.png") for name, pixels in photo_tiles(64)]
    residuals = residuals_of(images, "wavelet", 64, 8, store)
    pattern = torch.from_numpy(np.random.default_rng(3).standard_normal((3, 8, 8)).astype(np.float32))
    pattern -= pattern.mean(dim=(1, 2), keepdim=True)
    half = len(residuals) // 2
    marked = residuals[half:] + 0.3 * residuals.std() * tile_template(pattern.numpy(), tuple(residuals.shape[1:]))
    template, no_weights = fit_reader(periodic_features(residuals[:half]), periodic_features(marked))
    assert no_weights is None  # no sign leans given: a template alone
    assert template.shape == (3, 8, 8) and template.std() == pytest.approx(1.0, abs=1e-4)
    cosine = float((torch.from_numpy(template) * pattern).sum() / (pattern.norm() * np.linalg.norm(template)))
    assert cosine > 0.8
    # periodic-rgb of the tiled template is the inner product with the periodic part, up to one scale
    tiled = tile_template(template, tuple(residuals.shape[1:])).unsqueeze(0)
    rho = rho_matrix(residuals, tiled, "periodic-rgb")[:, 0]
    direct = (periodic_part(standardize(residuals)) * torch.from_numpy(template)).sum(dim=(1, 2, 3))
    assert torch.allclose(rho, direct / (direct.norm() / rho.norm()), atol=1e-5)
    with pytest.raises(ValueError, match="two images of each class"):
        fit_reader(periodic_features(residuals[:1]), periodic_features(marked))

    # given sign leans too, template correlation + leans @ weights is the joint discriminant's score
    rng = np.random.default_rng(4)
    leans_real, leans_fake = rng.standard_normal((half, 63)), rng.standard_normal((len(marked), 63)) + 0.3
    template, weights = fit_reader(
        periodic_features(residuals[:half]), periodic_features(marked), leans_real, leans_fake
    )
    assert weights.shape == (63,) and weights.mean() > 0  # the leans shifted toward generated count for it
    tiled = tile_template(template, tuple(residuals.shape[1:])).unsqueeze(0)
    everything, leans = torch.cat([residuals[:half], marked]), np.r_[leans_real, leans_fake]
    score = rho_matrix(everything, tiled, "periodic-rgb")[:, 0].double().numpy() + leans @ weights
    features = np.c_[periodic_features(everything), leans]
    labels = np.r_[np.zeros(half), np.ones(len(marked))]
    lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit(features, labels)
    assert np.corrcoef(score, lda.decision_function(features))[0, 1] == pytest.approx(1.0, abs=1e-6)


def test_phase_grid_is_phase_at_no_roll():
    """``phase`` is the largest correlation over the 64 rolls; ``phase-grid`` the one at no roll."""
    from engine.method.correlation import rho_matrix

    gen = torch.Generator().manual_seed(0)
    pattern = torch.randn(1, 3, 8, 8, generator=gen).repeat(1, 1, 8, 8)  # 64 x 64, period 8
    noisy = lambda x: x + 0.5 * torch.randn(x.shape, generator=gen)  # noqa: E731
    aligned, shifted = noisy(pattern), noisy(torch.roll(pattern, (1, 2), dims=(2, 3)))
    phase = rho_matrix(torch.cat([aligned, shifted]), pattern, "phase")[:, 0]
    grid = rho_matrix(torch.cat([aligned, shifted]), pattern, "phase-grid")[:, 0]
    assert phase[0] == pytest.approx(grid[0], abs=1e-6)  # aligned: the best roll is no roll
    assert phase[1] > grid[1] + 0.5  # shifted: the best roll is elsewhere, and far better


def test_offsets_read_an_off_grid_image_also_with_phase(tiny_dataset, store):
    """The card's offset reading is the fit re-calibrated under ``phase``, its cut raised to share the
    card's budget; by default an image whose pattern sits off the grid takes whichever reading is
    surer, so nothing plain flags is lost, and on the photos the cut was set on nothing is added."""
    from dataclasses import replace

    from engine.api import detect, offset_reading_of, train_from_folders
    from engine.data.images import list_images, load_images
    from engine.data.perturb import perturb
    from engine.errors import ConfigError

    cfg = TrainConfig(method="dif", steps=20, batch=16, seed=5, **TINY)
    fp = train_from_folders("o", tiny_dataset["real"], tiny_dataset["fake"], cfg, 8, store, evaluate_test=False)[
        "fingerprint"
    ]
    phase_cfg = TrainConfig(**{**cfg.to_dict(), "correlation": "phase"})
    phase = train_from_folders("o-phase", tiny_dataset["real"], tiny_dataset["fake"], phase_cfg, 8, store)
    assert phase["cached"]
    offset = offset_reading_of(fp)
    assert offset.correlation == "phase"
    assert (offset.mu_real, offset.mu_fake) == pytest.approx(
        (phase["fingerprint"].mu_real, phase["fingerprint"].mu_fake), abs=1e-6
    )
    shared = offset.decision["shared_with_plain"]
    as_fitted = phase["fingerprint"]  # its own cut: a quantile, or with too few photos the midpoint
    own = as_fitted.threshold if as_fitted.threshold is not None else (as_fitted.mu_real + as_fitted.mu_fake) / 2
    assert shared["own_threshold"] == pytest.approx(own, abs=1e-9)
    assert offset.threshold >= shared["own_threshold"]  # raised toward the generated side, never lowered
    assert shared["n_off_grid_unflagged"] > 0, "no reference photo sat off the grid: nothing was shared"

    fake, _ = load_images(list_images(tiny_dataset["fake"]), crop=None)
    real, _ = load_images(list_images(tiny_dataset["real"]), crop=None)
    # on the photos the card's cut was set on (its calibration photos), offsets flag what plain flags
    reference = [im for im in real if im.sha256 in set(fp.calibration_set["real"])]
    assert len(reference) == fp.calibration_set["n_real"]
    with_offsets, aligned_only = detect(fp, reference, store), detect(fp, reference, store, offsets=False)
    assert [r["label"] for r in with_offsets] == [r["label"] for r in aligned_only]
    own_cut = replace(
        fp, offset_reading={**fp.offset_reading, "decision": {**offset.decision, "threshold": shared["own_threshold"]}}
    )
    assert sum(r["label"] == "generated" for r in detect(own_cut, reference, store)) >= sum(
        r["label"] == "generated" for r in with_offsets
    )

    images = perturb(fake, "shift1") + perturb(real, "shift1") + fake
    plain_rows = detect(fp, images, store, offsets=False)
    rows = detect(fp, images, store)
    as_phase = detect(phase["fingerprint"], images, store)
    assert all("reading" not in r for r in plain_rows)  # --no-offsets: the plain reading, as before
    switched = [i for i, r in enumerate(rows) if "reading" in r]
    assert switched, "no image was read with the offset reading: this test would test nothing"
    for i, (row, plain_row) in enumerate(zip(rows, plain_rows)):
        if i in switched:
            assert row["reading"] == "phase (the image's 8-pixel pattern sits off the grid)"
            assert row["rho"] == pytest.approx(as_phase[i]["rho"], abs=1e-6) and row["score"] > plain_row["score"]
        else:
            assert row["rho"] == pytest.approx(plain_row["rho"], abs=1e-9)
        if plain_row["label"] == "generated":
            assert row["label"] == "generated"  # the surer reading decides: a plain flag is never lost
    # attribution reads the same way: the same reading and score per image
    from engine.lineage.attribution import attribute

    for result, row in zip(attribute(images, [fp], store), rows):
        [entry] = [e for e in result.ranking if e["model"] == "o"]
        assert entry.get("reading") == row.get("reading") and entry["score"] == pytest.approx(row["score"], abs=1e-9)
    broken = replace(fp, offset_reading={**fp.offset_reading, "statistic": "nope"})
    with pytest.raises(ConfigError, match="'o': its card's offset_reading is malformed"):
        detect(broken, images[:1], store)


# ---------------------------------------------------------------- format bias
def _jpeg_folder(folder, items, quality: int = 85):
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in items:
        Image.fromarray(arr).save(folder / f"{name}.jpg", quality=quality)
    return folder


def test_train_warns_when_only_the_real_images_are_jpeg_and_resave_removes_the_difference(
    tiny_dataset, tmp_path, store
):
    from engine.api import train_from_folders
    from engine.data.images import list_images, load_images

    real_png, _ = load_images(list_images(tiny_dataset["real"]), crop=None)
    real_jpeg = _jpeg_folder(
        tmp_path / "real-jpeg", [(im.source.rsplit("/", 1)[-1][:-4], im.pixels) for im in real_png]
    )
    cfg = TrainConfig(method="marra18", **TINY)
    res = train_from_folders("f", real_jpeg, tiny_dataset["fake"], cfg, 8, store, evaluate_test=False)
    assert len(res["warnings"]) == 1 and res["warnings"][0].startswith(
        "format bias: 100% of the real training images are JPEG"
    )
    assert "--resave-jpeg" in res["warnings"][0]
    clean = train_from_folders("g", tiny_dataset["real"], tiny_dataset["fake"], cfg, 8, store, evaluate_test=False)
    assert clean["warnings"] == []
    resaved = train_from_folders(
        "h",
        real_jpeg,
        tiny_dataset["fake"],
        TrainConfig(method="marra18", resave_jpeg=90, **TINY),
        8,
        store,
        evaluate_test=False,
    )
    assert resaved["warnings"] == [] and resaved["fingerprint"].train_key != res["fingerprint"].train_key


def test_size_bias_is_reported(tmp_path):
    from engine.data.format_bias import format_warnings

    small = [_loaded(np.zeros((256, 256, 3), np.uint8))]
    large = [_loaded(np.zeros((1024, 768, 3), np.uint8))]
    assert format_warnings(small, large)[0].startswith(
        "size bias: the real training images' median short side is 256 px, the generated ones' 768 px"
    )
    assert format_warnings(small, small) == []


def test_cli_train_prints_the_format_warning_and_detect_refuses_zero_tiles(tiny_dataset, tmp_path, capsys):
    from engine.cli.main import main
    from engine.data.images import list_images, load_images

    real_png, _ = load_images(list_images(tiny_dataset["real"]), crop=None)
    real_jpeg = _jpeg_folder(tmp_path / "rj", [(im.source.rsplit("/", 1)[-1][:-4], im.pixels) for im in real_png])
    cache = str(tmp_path / "cache")
    assert (
        main(
            [
                "train",
                "--name",
                "w",
                "--real",
                str(real_jpeg),
                "--fake",
                str(tiny_dataset["fake"]),
                "--method",
                "marra18",
                "--extractor",
                "wavelet",
                "--crop",
                "64",
                "--train-size",
                "8",
                "--no-reference-pool",
                "--quiet",
                "--cache",
                cache,
            ]
        )
        == 0
    )
    assert "warning: format bias" in capsys.readouterr().err
    assert main(["detect", "--name", "w", str(tiny_dataset["fake"]), "--tiles", "0", "--cache", cache]) == 2
    assert "--tiles 0: must be at least 1" in capsys.readouterr().err
    # a heavily compressed suspect carries the JPEG warning attribution gives; the PNG suspects carry none
    fake_png, _ = load_images(list_images(tiny_dataset["fake"]), crop=None)
    named = [(im.source.rsplit("/", 1)[-1][:-4], im.pixels) for im in fake_png[:3]]
    fake_jpeg = _jpeg_folder(tmp_path / "fj", named, quality=75)
    assert main(["detect", "--name", "w", str(fake_jpeg), str(tiny_dataset["fake"]), "--json", "--cache", cache]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    jpeg_rows = [r for r in rows if r["file"].endswith(".jpg")]
    assert len(jpeg_rows) == 3 and all(any("estimated quality 75" in w for w in r["warnings"]) for r in jpeg_rows)
    assert all("warnings" not in r for r in rows if r["file"].endswith(".png"))
    assert main(["detect", "--name", "w", str(fake_jpeg), "--cache", cache]) == 0
    assert capsys.readouterr().err.count("heavy JPEG compression") == 3


# ---------------------------------------------------------------- the matrix
def test_bench_prints_the_robustness_matrix_from_dif_detect_on_degraded_copies(tmp_path):
    """The matrix's JPEG cell is what dif detect says of JPEG copies of the held-out images."""
    from engine.api import detect
    from engine.cli.main import main
    from engine.data.images import load_images
    from engine.data.perturb import perturb
    from engine.storage.store import Store

    root = tmp_path / "data"
    from conftest import TinyGenerator, apply_generator

    tiles = photo_tiles(64)
    write_pngs(root / "real", [t for t in tiles if t[0].startswith(("coffee", "chelsea"))])
    write_pngs(
        root / "gen",
        apply_generator(TinyGenerator(0), [t for t in tiles if t[0].startswith(("astronaut", "rocket"))], "g"),
    )
    out = tmp_path / "bench"
    assert (
        main(
            [
                "bench",
                "--data",
                str(root),
                "--methods",
                "marra18",
                "--crop",
                "64",
                "--extractor",
                "wavelet",
                "--train-sizes",
                "8",
                "--repeats",
                "1",
                "--no-reference-pool",
                "--augment",
                "none,jpeg",
                "--correlation",
                "plain,phase,plain+offsets",
                "--perturb",
                "none,jpeg75,shift1",
                "--out",
                str(out),
                "--cache",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )
    md = (out / "results.md").read_text()
    assert (
        "**Robustness matrix**" in md
        and "| trained on | tested on | method | augment | statistic | none | jpeg75 | shift1 |" in md
    )
    result = json.loads((out / "results.json").read_text())
    combos = {(s["augment"], s["statistic"], s["perturb"]) for s in result["summary"]}
    stats = ("plain", "phase", "plain+offsets")
    assert combos == {(a, st, p) for a in ("none", "jpeg") for st in stats for p in ("none", "jpeg75", "shift1")}
    row = next(
        r
        for r in result["rows"]
        if (r["augment"], r["statistic"], r["perturb"], r["in_set"]) == ("none", "phase", "jpeg75", True)
    )
    store = Store(out / "store", residuals_root=tmp_path / "cache")
    fp = store.load("gen.marra18.none-phase.s0")
    real, _ = load_images(fp.test_files["real"], crop=None)
    fake, _ = load_images(fp.test_files["fake"], crop=None)
    verdicts = detect(fp, perturb(real, "jpeg75") + perturb(fake, "jpeg75"), store)
    flagged = np.mean([v["label"] == "generated" for v in verdicts[len(real) :]])
    assert row["flagged"] == pytest.approx(flagged)
    # plain+offsets: the plain fit, read as dif detect reads the shifted copies (offsets on)
    row = next(
        r
        for r in result["rows"]
        if (r["augment"], r["statistic"], r["perturb"], r["in_set"]) == ("none", "plain+offsets", "shift1", True)
    )
    fp = store.load("gen.marra18.none-plain+offsets.s0")
    assert fp.correlation == "plain" and fp.offset_reading
    verdicts = detect(fp, perturb(real, "shift1") + perturb(fake, "shift1"), store, offsets=True)
    assert row["flagged"] == pytest.approx(np.mean([v["label"] == "generated" for v in verdicts[len(real) :]]))
    assert row["real_fpr"] == pytest.approx(np.mean([v["label"] == "generated" for v in verdicts[: len(real)]]))


def test_an_upscaled_image_is_read_with_the_cards_upscaled_reading(tiny_dataset, store):
    """The upscaled reader is a template fitted on half-size copies enlarged back of the fit images
    (both classes) and calibrated on the calibration images' copies; detect uses it on images that
    look upscaled only, and a card stored before it gains it on its next cache hit, without a refit."""
    from dataclasses import replace

    from engine.api import (
        JPEG_CHECK_IMAGES,
        UPSCALED_CHECKS,
        calibrate_on_pool,
        detect,
        reading_of,
        rho_for,
        train_from_folders,
    )
    from engine.data.conditions import looks_upscaled
    from engine.data.images import list_images, load_images
    from engine.data.perturb import perturb
    from engine.data.reference_pool import images_pool
    from engine.errors import ConfigError
    from engine.lineage.attribution import attribute
    from engine.method.detect import scores_and_decisions

    cfg = TrainConfig(method="dif", steps=20, batch=16, seed=5, **TINY)
    fp = train_from_folders("u", tiny_dataset["real"], tiny_dataset["fake"], cfg, 8, store, evaluate_test=False)[
        "fingerprint"
    ]
    record = fp.upscaled_reading
    assert record["statistic"] == "periodic-rgb" and record["fitted_on"]["n_generated"] == len(fp.train_files["fake"])
    real, _ = load_images(list_images(tiny_dataset["real"]), crop=None)
    fake, _ = load_images(list_images(tiny_dataset["fake"]), crop=None)
    by_hash = {im.sha256: im for im in real + fake}

    def listed(shas: list[str]) -> list:
        return [by_hash[h] for h in shas][:JPEG_CHECK_IMAGES]

    # the template is the discriminant of the fit images' half-size copies, recomputed from the card's file lists
    template = _recomputed_template(fp, listed, UPSCALED_CHECKS, store)
    assert np.asarray(record["template"]) == pytest.approx(template, abs=1e-5)
    reader = reading_of(fp, "upscaled")
    for side, mu in (("real", reader.mu_real), ("fake", reader.mu_fake)):  # means: its calibration copies' rho
        images = perturb(listed(fp.calibration_set[side]), UPSCALED_CHECKS[0])
        assert mu == pytest.approx(np.mean(rho_for([reader], images, store)), abs=1e-6)
    assert reader.mu_fake > reader.mu_real

    # a 64-px image enlarged 2x that looks upscaled (the detector decides) is read both ways and the reading
    # with the higher signed score decides; an image that does not look upscaled is read the plain way
    big = [_loaded(np.asarray(Image.fromarray(im.pixels).resize((128, 128), Image.Resampling.BICUBIC)), f"{i}.png")
           for i, im in enumerate(fake[:12])]  # fmt: skip
    enlarged = [looks_upscaled(im.pixels) for im in big]
    assert 2 <= sum(enlarged) < len(big) and not any(looks_upscaled(im.pixels) for im in fake[:12])
    rows = detect(fp, big + fake[:12], store, max_tiles=1, offsets=False)  # the centre crop, as rho_for reads it
    rho = rho_for([fp, reader], big, store)
    plain_score, reader_score = scores_and_decisions(fp, rho[:, 0])[0], scores_and_decisions(reader, rho[:, 1])[0]
    by_reader = [e and r > p for e, r, p in zip(enlarged, reader_score, plain_score)]
    assert any(by_reader) and not all(by_reader)
    expected = ["periodic-rgb (the image looks upscaled)" if b else None for b in by_reader] + [None] * 12
    assert [r.get("reading") for r in rows] == expected
    assert [r["rho"] for r in rows[:12]] == pytest.approx([rho[i, 1 if b else 0] for i, b in enumerate(by_reader)])
    assert all(any("upscaled reading" in w for w in r.get("warnings", [])) == b for r, b in zip(rows, by_reader))
    routed = [im for im, b in zip(big, by_reader) if b]
    # an image enlarged by pixel repetition is certain to be one (no photo repeats its pixels): the reader decides
    doubled = [
        _loaded(np.repeat(np.repeat(im.pixels, 2, axis=0), 2, axis=1), f"d{i}.png") for i, im in enumerate(fake[:6])
    ]
    rows = detect(fp, doubled, store, max_tiles=1)
    assert [r.get("reading") for r in rows] == ["periodic-rgb (the image looks upscaled)"] * 6
    assert [r["rho"] for r in rows] == pytest.approx(list(rho_for([reader], doubled, store)[:, 0]), abs=1e-6)
    # attribution reads them the same way, and says when the verdict's model decided with its upscaled reading
    results = attribute(big, [fp], store, max_tiles=1)
    decided = [res.verdict == "u" and b for res, b in zip(results, by_reader)]
    assert any(decided)
    assert [any("decided with its upscaled reading" in w for w in res.warnings) for res in results] == decided

    # a card stored before the upscaled reading gains it on its next cache hit, without a refit
    store.save(replace(store.load("u"), upscaled_reading={}))
    again = train_from_folders("u", tiny_dataset["real"], tiny_dataset["fake"], cfg, 8, store, evaluate_test=False)
    assert again["cached"] and torch.equal(again["fingerprint"].tensor, fp.tensor)
    assert json.dumps(store.load("u").upscaled_reading, sort_keys=True) == json.dumps(record, sort_keys=True)
    # a pool re-fits the offset reading but leaves the reader, which is calibrated among half-size copies
    offset_before = dict(fp.offset_reading)
    calibrate_on_pool(fp, images_pool("photos", real, [im.source for im in real]), store)
    assert fp.upscaled_reading == record and fp.offset_reading != offset_before

    broken = replace(fp, upscaled_reading={**record, "template": [[0.0] * 8] * 8})
    with pytest.raises(ConfigError, match="'u': its card's upscaled_reading is malformed"):
        detect(broken, routed, store)


def test_the_upscaled_reader_finds_a_period_8_pattern_in_half_size_copies(tmp_path, store):
    """A smooth period-8 pattern (3 grey levels) planted in half of scikit-image's photo tiles survives a
    half-size round trip as an interpolated pattern: the card's upscaled reader, fitted on such copies
    of the fit images, ranks held-out copies above the fingerprint fitted on clean images."""
    from sklearn.metrics import roc_auc_score

    from engine.api import reading_of, rho_for, train_from_folders
    from engine.data.images import list_images, load_images
    from engine.data.perturb import perturb

    tiles = photo_tiles(64)
    yy, xx = np.mgrid[0:64, 0:64]
    pattern = 3.0 * np.cos(2 * np.pi * yy / 8) * np.cos(2 * np.pi * xx / 8)
    write_pngs(tmp_path / "real", tiles[0::2])
    write_pngs(tmp_path / "fake", [(n, np.clip(p + pattern[..., None], 0, 255).round().astype(np.uint8))
                                   for n, p in tiles[1::2]])  # fmt: skip
    cfg = TrainConfig(method="dif", steps=20, batch=16, seed=5, **TINY)
    fp = train_from_folders("p8", tmp_path / "real", tmp_path / "fake", cfg, 8, store, evaluate_test=False)[
        "fingerprint"
    ]
    used = {h for files in (fp.train_files, fp.calibration_set) for side in ("real", "fake") for h in files[side]}
    held = [
        [im for im in load_images(list_images(tmp_path / side), crop=None)[0] if im.sha256 not in used]
        for side in ("real", "fake")
    ]
    assert min(map(len, held)) > 40
    rho = rho_for([reading_of(fp, "upscaled"), fp], perturb(held[0], "scale0.5") + perturb(held[1], "scale0.5"), store)
    truth = np.r_[np.zeros(len(held[0])), np.ones(len(held[1]))]
    reader_auc, fingerprint_auc = (roc_auc_score(truth, rho[:, k]) for k in (0, 1))
    assert reader_auc > 0.9 and reader_auc > fingerprint_auc
