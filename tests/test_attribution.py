"""Attribution against the tiny zoo: own model first, real photos unknown, and the reliability warnings."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from zoo_fixtures import tiny_zoo

from engine.data.conditions import UPSCALE_CLIFF_WARN, image_warnings, jpeg_quality, resampling_evidence
from engine.data.images import load_image
from engine.errors import ConfigError
from engine.lineage.attribution import UNKNOWN, attribute


@pytest.fixture(scope="module")
def zoo():
    store, manifest = tiny_zoo()
    return store, [store.load(n) for n in manifest["models"]]


def _held_out(fp, kind="fake"):
    return [load_image(p, crop=None) for p in fp.test_files[kind]]


@pytest.mark.parametrize("name", ["zoo-shuffle", "zoo-ft-style", "zoo-base"])
def test_images_of_a_zoo_model_rank_their_own_model_first(zoo, name):
    store, fps = zoo
    fp = next(f for f in fps if f.name == name)
    results = attribute(_held_out(fp), fps, store)
    own = np.mean([r.verdict == name for r in results])
    assert own >= 0.6, own
    r = results[0]
    assert len(r.ranking) == len(fps) and {row["model"] for row in r.ranking} == {f.name for f in fps}
    claims = [row["claims"] for row in r.ranking]
    assert claims == sorted(claims, reverse=True)  # claiming models come first


def test_images_are_attributed_within_their_family(zoo):
    store, fps = zoo
    family = {f.name: f.metadata["family"] for f in fps}
    for fp in fps:
        results = attribute(_held_out(fp)[:24], fps, store)
        right = np.mean([r.verdict != UNKNOWN and family[r.verdict] == family[fp.name] for r in results])
        assert right >= 0.8, (fp.name, right)


def test_real_photos_are_unknown(zoo):
    store, fps = zoo
    results = attribute(_held_out(fps[0], "real"), fps, store)
    assert np.mean([r.verdict == UNKNOWN for r in results]) >= 0.9
    assert all(not any(row["claims"] for row in r.ranking) for r in results if r.verdict == UNKNOWN)


def test_no_models_is_a_config_error(zoo):
    store, fps = zoo
    with pytest.raises(ConfigError):
        attribute(_held_out(fps[0])[:1], [], store)


def _jpeg(arr: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def test_jpeg_quality_estimate_and_warning(zoo, tmp_path):
    from skimage import data

    photo = data.astronaut()[:256, :256]
    for q in (30, 50, 75, 95):
        assert jpeg_quality(_jpeg(photo, q)) == pytest.approx(q, abs=2)
    png = io.BytesIO()
    Image.fromarray(photo).save(png, format="PNG")
    assert jpeg_quality(png.getvalue()) is None
    path = tmp_path / "heavy.jpg"
    path.write_bytes(_jpeg(photo, 60))
    store, fps = zoo
    (r,) = attribute([load_image(path, crop=None)], fps, store)
    assert any("JPEG" in w and "quality 60" in w for w in r.warnings)
    light = tmp_path / "light.jpg"
    light.write_bytes(_jpeg(photo, 97))
    assert not any("JPEG" in w for w in image_warnings(load_image(light, crop=None), 32))


def test_small_and_upscaled_images_warn(zoo):
    from skimage import data

    store, fps = zoo
    small = load_image(_png(data.coffee()[:20, :20]), crop=None)
    (r,) = attribute([small], fps, store)
    assert any("smaller than the 32x32 crop" in w for w in r.warnings)
    photo = data.astronaut()
    up = np.asarray(Image.fromarray(np.ascontiguousarray(photo[156:356, 156:356])).resize((400, 400), Image.BICUBIC))
    assert resampling_evidence(up)[0] < UPSCALE_CLIFF_WARN < resampling_evidence(photo)[0]
    assert any("upscaled" in w for w in image_warnings(load_image(_png(up), crop=None), 32))
    assert not any("upscaled" in w for w in image_warnings(load_image(_png(photo), crop=None), 32))
    corner = np.ascontiguousarray(photo[:200, :200])  # mostly flat, but native: its spectrum still falls
    assert not any("upscaled" in w for w in image_warnings(load_image(_png(corner), crop=None), 32))


def test_upscale_warning_spares_smooth_natives_and_catches_huge_enlargements():
    """Issue 13 point 5: a smooth native image (like an SD crop: blur sigma 0.6, once warned at ratio
    0.0163 < 0.02) is not warned; a 256 px crop enlarged to a 3000 px JPEG (once silent) is."""
    from PIL import ImageFilter
    from skimage import data

    smooth = np.asarray(Image.fromarray(data.coffee()).filter(ImageFilter.GaussianBlur(0.6)))
    assert not any("upscaled" in w for w in image_warnings(load_image(_png(smooth), crop=None), 256))
    crop = np.ascontiguousarray(data.astronaut()[128:384, 128:384])
    big = Image.fromarray(crop).resize((3000, 3000), Image.BICUBIC)
    buf = io.BytesIO()
    big.save(buf, format="JPEG", quality=90)
    warnings = image_warnings(load_image(buf.getvalue(), crop=None), 256, buf.getvalue())
    assert any("upscaled from a much smaller image" in w for w in warnings), warnings


def test_pixel_repetition_is_an_upscale_and_a_flat_image_is_not():
    """A 2x nearest-neighbour enlargement has no spectral cliff (its repeated pixels make sharp steps),
    so the cliff test misses it; its rows and columns come in identical pairs, at one phase only."""
    from skimage import data

    from engine.data.conditions import REPEATED_PAIRS_WARN, looks_upscaled, repeated_pairs

    photo = np.ascontiguousarray(data.astronaut()[100:300, 100:300])
    doubled = np.repeat(np.repeat(photo, 2, axis=0), 2, axis=1)
    shifted = np.ascontiguousarray(doubled[1:, 1:])  # the pairs start on the other phase
    assert resampling_evidence(doubled)[0] > UPSCALE_CLIFF_WARN  # the cliff test alone would miss it
    assert repeated_pairs(doubled) == repeated_pairs(shifted) == 1.0 and looks_upscaled(shifted)
    assert any("pixel repetition" in w for w in image_warnings(load_image(_png(doubled), crop=None), 32))
    assert repeated_pairs(photo) < 0.05 and not looks_upscaled(photo)
    flat = np.full((200, 200, 3), 128, np.uint8)  # pairs off at both phases: not a repetition
    assert repeated_pairs(flat) == 0.0 < REPEATED_PAIRS_WARN


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG")
    return buf.getvalue()


def test_a_chance_level_detector_cannot_decide_the_verdict(zoo):
    store, fps = zoo
    shuffle = store.load("zoo-shuffle")
    images = _held_out(shuffle)[:12]
    before = attribute(images, [shuffle], store)
    claimed = [r for r in before if r.verdict == "zoo-shuffle"]
    assert claimed  # it normally claims its own images
    shuffle.test_metrics = dict(shuffle.test_metrics, accuracy=0.5)
    after = attribute(images, [shuffle], store)
    assert all(r.verdict == UNKNOWN for r in after)
    assert all(any("near chance" in w for w in r.warnings) for r, b in zip(after, before) if b.verdict == "zoo-shuffle")
    assert all(row["reliable"] is False for r in after for row in r.ranking)
