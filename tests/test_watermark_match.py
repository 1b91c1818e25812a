"""Watermark-matched training on images the project marks itself with the invisible-watermark encoder.

The stand-in for SD's images: 512x512 resizes of scikit-image photos, marked as the reference SD
scripts mark their outputs, then centre-cropped to 256x256 (as ``datasets/sd1`` was made).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from engine.api import train_fingerprint
from engine.data.images import LoadedImage, content_hash
from engine.method.config import TrainConfig
from engine.provenance.watermark import SD_GENERATOR, embed_sd_watermark
from engine.provenance.watermark_match import mark_like_sd, marked_copies, survey
from tests.test_provenance import CENTRE, photo512

MARKED = ("astronaut", "coffee", "chelsea", "rocket", "camera", "colorwheel")
PLAIN = ("retina", "hubble_deep_field", "immunohistochemistry", "coins", "moon", "grass")


def loaded(name: str, pixels: np.ndarray) -> LoadedImage:
    return LoadedImage(
        np.ascontiguousarray(pixels),
        name,
        content_hash(pixels.tobytes()),
        (pixels.shape[1], pixels.shape[0]),
        "RGB",
        "PNG",
    )


@pytest.fixture(scope="module")
def sets() -> dict[str, list[LoadedImage]]:
    generated = [loaded(f"{n}-marked", embed_sd_watermark(photo512(n))[CENTRE, CENTRE]) for n in MARKED]
    real = [loaded(n, photo512(n)[CENTRE, CENTRE]) for n in PLAIN]
    return {"generated": generated, "real": real}


def test_survey_finds_the_mark_on_marked_crops_only(sets):
    marked, plain = survey(sets["generated"]), survey(sets["real"])
    assert marked.generator == SD_GENERATOR and marked.fraction >= 0.5
    assert plain.generator is None and plain.marked == 0 and plain.checked == len(PLAIN)


def test_marking_a_256_crop_makes_it_read_like_the_generated_set(sets):
    copies = marked_copies(sets["real"])
    assert survey(copies).generator == SD_GENERATOR
    for before, after in zip(sets["real"], copies):
        assert after.pixels.shape == before.pixels.shape and after.sha256 != before.sha256
        diff = np.abs(after.pixels.astype(int) - before.pixels.astype(int))
        assert 0 < diff.mean() < 3  # invisible: a fraction of a grey level on average


def test_mark_like_sd_keeps_large_images_whole():
    big = np.asarray(np.random.default_rng(0).integers(0, 255, (600, 640, 3)), dtype=np.uint8)
    out = mark_like_sd(big)
    assert out.shape == big.shape and not np.array_equal(out, big)


def test_training_on_a_marked_set_marks_the_real_images_and_says_so(sets, store):
    config = TrainConfig(method="marra18")
    fp, _ = train_fingerprint("sd-like", sets["real"], sets["generated"], config, store)
    assert fp.watermark["matched"] is True and fp.watermark["survey"]["generator"] == SD_GENERATOR
    off, _ = train_fingerprint(
        "sd-like-off", sets["real"], sets["generated"], TrainConfig(method="marra18", watermark_match=False), store
    )
    assert off.watermark["matched"] is False and off.train_key != fp.train_key
    # the marked share of the real training images really was marked: those now carry the generated
    # set's mark, so they correlate more with the generated mean residual (measured mu_real 0.093 vs 0.001)
    assert torch.equal(fp.tensor, off.tensor)  # a mean of the generated residuals: same in both runs
    assert fp.mu_real > off.mu_real + 0.02
    assert np.all(fp.train_rho_real >= off.train_rho_real - 1e-6)
    again = store.load("sd-like")
    assert again.watermark == fp.watermark


def test_unmarked_generated_set_is_left_alone(sets, store):
    fp, _ = train_fingerprint("plain", sets["real"][:3], sets["real"][3:], TrainConfig(method="marra18"), store)
    assert fp.watermark["matched"] is False and fp.watermark["survey"]["marked"] == 0


def test_without_the_decoder_the_card_says_unchecked_and_training_warns(sets, store, monkeypatch):
    """A missing invisible-watermark must not read as "no watermark": the fingerprint would learn the mark."""
    from engine.api import card_warnings
    from engine.provenance.watermark import MISSING

    monkeypatch.setitem(sys.modules, "imwatermark", None)  # import imwatermark now fails, as on a core install
    found = survey(sets["generated"])
    assert found.checked == 0 and found.unread.startswith(MISSING) and found.to_dict()["unread"] == found.unread
    config = TrainConfig(method="marra18")
    fp, _ = train_fingerprint("sd-like-unchecked", sets["real"], sets["generated"], config, store)
    assert fp.watermark["matched"] is False and fp.watermark["checked"] is False
    assert fp.watermark["reason"] == f"not checked: {MISSING}"
    (warning,) = card_warnings(fp)
    assert "not checked for the Stable Diffusion watermark" in warning and "pip install" in warning
    assert card_warnings(store.load("sd-like-unchecked")) == [warning]  # the stored card says the same
    # images too small for the decoder were never checkable: no warning for them
    small = [loaded(im.source, im.pixels[:64, :64]) for im in sets["generated"]]
    assert survey(small).unread == ""
    monkeypatch.delitem(sys.modules, "imwatermark")
    # once the decoder is there, the same run is not served from the unchecked fit: it is refitted
    checked, hit = train_fingerprint("sd-like", sets["real"], sets["generated"], config, store)
    assert not hit and checked.train_key == fp.train_key
    assert checked.watermark["matched"] is True and card_warnings(checked) == []
    assert store.find_by_train_key(fp.train_key).watermark["matched"] is True
