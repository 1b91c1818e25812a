"""Attribute page: which known model made this image? Ranked scores, decision, warnings, residual, metadata.

Uploads live in this browser session only (Streamlit keeps each session's files apart) and are
decoded in memory; results are kept in the session state, keyed by the files' hashes.
"""
from __future__ import annotations

import streamlit as st

from dashboard.crossdata import load_models, require
from dashboard.figures import enlarge, ranking_bars, spectrum8, to_rgb8
from dashboard.imagemeta import image_metadata
from dashboard.state import get_store
from dashboard.ui import guarded
from dashboard.uploads import read_uploads
from engine.api import residuals_of
from engine.errors import ConfigError
from engine.provenance import compare, read_provenance

IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "gif", "zip"]


def attributions(images, names: list[str], raw: dict[str, bytes]):
    """Attribution per image, computed once per (images, models) in this session."""
    fps = load_models(names)
    key = (tuple(im.sha256 for im in images), tuple((fp.name, fp.train_key) for fp in fps))
    cache = st.session_state.setdefault("attr_results", {})
    if key not in cache:
        attribution = require("attribution", "attribution")
        with st.spinner(f"Scoring {len(images)} image(s) against {len(fps)} models..."):
            cache.clear()  # keep one result set per session: uploads are not hoarded in memory
            cache[key] = attribution.attribute(images, fps, store=get_store(), data=[raw.get(im.source) for im in images])
    return cache[key], fps


def confidence_text(ranking: list[dict]) -> str:
    if not ranking:
        return "no scores"
    top = float(ranking[0].get("score", 0.0))
    if len(ranking) == 1:
        return f"score {top:+.3f}"
    margin = top - float(ranking[1].get("score", 0.0))
    return f"score {top:+.3f}, margin {margin:.3f} over {ranking[1].get('model')}"


def residual_view(image, fp) -> None:
    """The image's residual under the top model's geometry and its spectrum."""
    res = residuals_of([image], fp.extractor, fp.crop, fp.border, get_store(), pad=True)[0]
    c1, c2 = st.columns(2)
    c1.image(enlarge(to_rgb8(res), 192), caption=f"residual ({fp.extractor}, crop {fp.crop})", width="stretch")
    c2.image(enlarge(spectrum8(res), 192), caption="residual spectrum (log |FFT|)", width="stretch")


def provenance_view(image, verdict: str, fps_by_name: dict, raw: bytes | None) -> None:
    """Watermark and metadata signals beside the ranking, and where they disagree with it."""
    if raw is None:
        return
    cache = st.session_state.setdefault("prov_results", {})  # reruns must not decode the watermark again
    if image.sha256 not in cache:
        if len(cache) > 64:
            cache.clear()
        cache[image.sha256] = read_provenance(raw, name=image.source)
    prov = cache[image.sha256]
    fp = fps_by_name.get(verdict)
    for line in compare(prov, verdict, fp.metadata if fp is not None else None):
        st.warning(f"Provenance and fingerprint disagree: {line}")
    with st.expander(f"Provenance signals ({len(prov.signals)}): {', '.join(prov.generators()) or 'no generator named'}"):
        for s in prov.signals:
            st.markdown(f"**{s.strength}** · {s.kind}: `{s.value}`  \n{s.evidence}")
        if not prov.signals:
            st.caption("No watermark or generation metadata found (absence says nothing: metadata is easily stripped).")
        for problem in prov.problems:
            st.caption(f"problem: {problem}")


def show_result(image, result, fps_by_name: dict, raw: bytes | None, index: int) -> None:
    verdict = result.verdict
    head = f"from **{verdict}**" if verdict != "unknown" else "**unknown** (no known model claims it)"
    st.markdown(f"#### {image.source}: {head}")
    st.caption(confidence_text(result.ranking))
    for line in result.warnings:
        st.warning(line)
    c1, c2 = st.columns([1, 2])
    c1.image(image.pixels, caption=f"{image.original_size[0]}x{image.original_size[1]} {image.format}", width="stretch")
    models = [r["model"] for r in result.ranking]
    scores = [float(r.get("score", 0.0)) for r in result.ranking]
    c2.plotly_chart(ranking_bars(models, scores, verdict if verdict != "unknown" else None), width="stretch", key=f"attr_bars_{index}")
    with st.expander("Residual and spectrum"):
        with guarded("residual"):
            top = fps_by_name.get(models[0]) if models else None
            if top is not None:
                residual_view(image, top)
    provenance_view(image, verdict, fps_by_name, raw)
    with st.expander("Metadata (EXIF, software, C2PA)"):
        if raw is None:
            st.caption("not available for this file")
        else:
            meta = image_metadata(raw)
            st.write(f"C2PA manifest present: **{'yes' if meta.get('c2pa_manifest') else 'no'}**; software tag: **{meta.get('software') or 'none'}**")
            st.json(meta, expanded=False)


st.title("Attribute")
st.caption("Upload suspect images: each is scored against every selected model's fingerprint.")
names: list[str] = []
with guarded("models"):
    names = get_store().names()
uploads = st.file_uploader("Suspect images (or a zip)", type=IMAGE_TYPES, accept_multiple_files=True, key="attr_upload")
chosen = st.multiselect("Compare against", names, default=names, key="attr_models") if names else []
if not names:
    st.info("No models in the store yet (see the Models page).")
elif uploads:
    batch = read_uploads(uploads)
    for line in batch.problems:
        st.error(line)
    with guarded("attribution"):
        if not chosen:
            raise ConfigError("no models selected: pick at least one model to compare against")
        if batch.images:
            results, fps = attributions(batch.images, chosen, batch.data)
            by_name = {fp.name: fp for fp in fps}
            for i, (image, result) in enumerate(zip(batch.images, results)):
                with st.container(border=True):
                    show_result(image, result, by_name, batch.data.get(image.source), i)
