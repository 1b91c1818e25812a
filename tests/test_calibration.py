"""Calibrated confidence and the inconclusive band."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.method.calibration import Calibration, calibrate


def test_posterior_is_half_between_equal_spread_classes_and_sign_agnostic():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(0.0, 0.01, 500), rng.normal(-0.05, 0.01, 500)  # generated below real
    cal = calibrate(real, fake, level=0.9)
    assert 0.2 < cal.posterior(-0.025) < 0.8  # near the crossing of the two fitted densities
    assert cal.verdict(-0.05) == "generated" and cal.verdict(0.0) == "real" and cal.verdict(-0.025) == "inconclusive"
    assert cal.confidence(-0.05) > 0.99


def test_band_rates_are_measured_on_the_calibration_images():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(0.0, 0.01, 2000), rng.normal(0.02, 0.01, 2000)  # heavy overlap
    cal = calibrate(real, fake, level=0.9)
    v = cal.verdict(real)
    assert cal.fpr_real == pytest.approx(np.mean(v == "generated"))
    assert 0.0 < cal.fpr_real < 0.2 and cal.inconclusive_real > 0.2
    strict = calibrate(real, fake, level=0.99)
    assert strict.fpr_real < cal.fpr_real and strict.inconclusive_real > cal.inconclusive_real


def test_round_trip_through_the_card():
    cal = calibrate(np.array([0.0, 0.01, -0.01]), np.array([0.05, 0.06, 0.04]))
    assert Calibration.from_dict(cal.to_dict()) == cal


def test_trained_model_carries_a_held_out_calibration(tiny_dataset):
    from engine.api import detect, train_from_folders
    from engine.data.images import list_images, load_image
    from engine.method.config import TrainConfig

    cfg = TrainConfig(method="marra18", extractor="wavelet", crop=64, border=8)
    result = train_from_folders("cal", tiny_dataset["real"], tiny_dataset["fake"], cfg, train_size=6)
    fp = result["fingerprint"]
    # the band and the means come from images that neither the fit nor the test used
    from engine.data.images import content_hash

    test_hashes = {content_hash(open(p, "rb").read()) for p in fp.test_files["real"] + fp.test_files["fake"]}
    fit_hashes = set(fp.train_files["real"]) | set(fp.train_files["fake"])
    cal_hashes = set(fp.calibration_set["real"]) | set(fp.calibration_set["fake"])
    assert fp.calibration["source"] == "calibration" and fp.calibration["n_fake"] == fp.calibration_set["n_fake"] >= 2
    assert cal_hashes and not cal_hashes & test_hashes and not cal_hashes & fit_hashes
    rows = detect(fp, [load_image(p, crop=None) for p in list_images(tiny_dataset["fake"])[:4]])
    assert all(0.5 <= r["confidence"] <= 1.0 and r["calibrated"] in {"generated", "real", "inconclusive"} for r in rows)


def test_real_fpr_cut_flags_at_most_the_target_of_its_reference_and_moves_without_retraining(tiny_dataset, store):
    from dataclasses import replace

    from engine.api import train_fingerprint
    from engine.data.images import list_images, load_image
    from engine.method.config import TrainConfig
    from engine.method.detect import decide

    real = [load_image(p, crop=None) for p in list_images(tiny_dataset["real"])]
    fake = [load_image(p, crop=None) for p in list_images(tiny_dataset["fake"])]
    cfg = TrainConfig(method="marra18", extractor="wavelet", crop=64, border=8, target_fpr=0.25)
    cal = (real[:12], fake[:12])
    fp, hit = train_fingerprint("cut", real[12:], fake[12:], cfg, store, calibration=cal)
    assert not hit and fp.decision["rule"] == "real-fpr" and fp.decision["n_reference"] == 12
    flagged = decide(fp.train_rho_real, fp.mu_real, fp.mu_fake, fp.threshold)
    assert flagged.mean() <= 0.25 and fp.decision["fpr_on_reference"] == flagged.mean()
    # the cut lies between the real calibration photos' bulk and the generated mean
    side = 1.0 if fp.mu_fake > fp.mu_real else -1.0
    assert side * fp.mu_real < side * fp.threshold < side * fp.mu_fake
    # another target: the same stored fingerprint (a cache hit), a cut further out, nothing retrained
    strict, hit = train_fingerprint("cut", real[12:], fake[12:], replace(cfg, target_fpr=0.1), store, calibration=cal)
    assert hit and torch.equal(strict.tensor, fp.tensor) and strict.decision["target_fpr"] == 0.1
    assert side * strict.threshold >= side * fp.threshold and store.load("cut").decision["target_fpr"] == 0.1
    # 12 photos cannot estimate a 1% cut: the closer-mean rule, and the card says why
    few, hit = train_fingerprint("cut", real[12:], fake[12:], replace(cfg, target_fpr=0.01), store, calibration=cal)
    assert (
        hit
        and few.threshold is None
        and few.decision["rule"] == "closer-mean"
        and "fewer than the 100" in few.decision["reason"]
    )
    # the paper's rule needs no cut
    closer, hit = train_fingerprint(
        "cut", real[12:], fake[12:], replace(cfg, decision="closer-mean"), store, calibration=cal
    )
    assert hit and closer.threshold is None and closer.decision == {"rule": "closer-mean"}


def test_the_jpeg_reading_cuts_at_its_own_target_and_the_clean_cut_stays(tiny_dataset, store):
    """``jpeg_target_fpr`` moves only the JPEG reading's cut (a user may accept more false positives among
    JPEGs, where the evidence is weaker), on the stored fit, and 0 gives back the card's own target."""
    from dataclasses import replace

    from engine.api import detect, jpeg_reading_of, train_fingerprint
    from engine.data.images import list_images, load_image
    from engine.data.perturb import perturb
    from engine.errors import ConfigError
    from engine.method.config import TrainConfig

    real = [load_image(p, crop=None) for p in list_images(tiny_dataset["real"])]
    fake = [load_image(p, crop=None) for p in list_images(tiny_dataset["fake"])]
    cfg = TrainConfig(method="marra18", extractor="wavelet", crop=64, border=8, target_fpr=0.05)
    cal = (real[:12], fake[:12])
    fp, hit = train_fingerprint("j", real[12:36], fake[12:36], cfg, store, calibration=cal)
    strict = jpeg_reading_of(fp)
    assert not hit and "template" in fp.jpeg_reading and strict.decision["target_fpr"] == 0.05
    loose_card, hit = train_fingerprint(
        "j", real[12:36], fake[12:36], replace(cfg, jpeg_target_fpr=0.25), store, calibration=cal
    )
    loose = jpeg_reading_of(loose_card)
    assert hit and torch.equal(loose_card.tensor, fp.tensor)  # a cache hit: nothing refitted
    assert loose_card.decision == fp.decision and loose_card.offset_reading == fp.offset_reading  # the rest stays
    assert loose_card.jpeg_reading["template"] == fp.jpeg_reading["template"]  # the same reader, another cut
    assert loose.decision["target_fpr"] == 0.25 and loose.decision["rule"] == "real-fpr"
    side = 1.0 if strict.mu_fake > strict.mu_real else -1.0
    assert side * loose.threshold < side * strict.threshold
    # among the calibration photos' JPEG copies (3 qualities x 12) it flags at most its target, and more than before
    assert strict.decision["fpr_on_reference"] <= 0.05 < loose.decision["fpr_on_reference"] <= 0.25
    # detect reads JPEG files with the looser cut and everything else as before
    held = real[36:] + fake[36:]
    as_jpeg = perturb(held, "jpeg75")
    flagged = [sum(r["label"] == "generated" for r in detect(card, as_jpeg, store)) for card in (fp, loose_card)]
    assert flagged[1] >= flagged[0]
    assert [r["label"] for r in detect(fp, held, store)] == [r["label"] for r in detect(loose_card, held, store)]
    assert store.load("j").jpeg_reading["decision"]["target_fpr"] == 0.25
    back, hit = train_fingerprint("j", real[12:36], fake[12:36], cfg, store, calibration=cal)
    assert hit and jpeg_reading_of(back).threshold == strict.threshold
    with pytest.raises(ConfigError, match="jpeg_target_fpr 0.7 out of range"):
        TrainConfig(jpeg_target_fpr=0.7)
