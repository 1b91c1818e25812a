"""Attribute page: which known model made this image? Headline verdict with its doubt, batch summary and case report,
ranked scores, the analysed region, warnings, residual, provenance and metadata.

Uploads live in this browser session only (Streamlit keeps each session's files apart) and are
decoded in memory; results are kept in the session state, keyed by the files' hashes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard.crossdata import load_models
from dashboard.figures import enlarge, ranking_bars, spectrum8, to_rgb8, with_boxes
from dashboard.imagemeta import image_metadata, metadata_rows
from dashboard.state import get_store
from dashboard.ui import guarded
from dashboard.uploads import SAMPLES_KEY, ServerFile, read_uploads
from engine.api import residuals_of
from engine.data.tiles import centre_box
from engine.errors import ConfigError
from engine.lineage.attribution import attribute
from engine.lineage.case_report import Verdict, case_report_html, summarise
from engine.provenance.signals import compare, read_provenance

DETAIL_ALL = 3  # up to this many images every detail is shown; beyond, one at a time
IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "gif", "zip"]


def attributions(images, names: list[str], raw: dict[str, bytes], offsets: bool = True):
    """Attribution per image, computed once per (images, models, reading) in this session."""
    fps = load_models(names)
    key = (tuple(im.sha256 for im in images), tuple((fp.name, fp.train_key) for fp in fps), offsets)
    cache = st.session_state.setdefault("attr_results", {})
    if key not in cache:
        with st.spinner(f"Scoring {len(images)} image(s) against {len(fps)} models..."):
            cache.clear()  # keep one result set per session: uploads are not hoarded in memory
            cache[key] = attribute(
                images, fps, store=get_store(), data=[raw.get(im.source) for im in images], offsets=offsets
            )
    return cache[key], fps


def residual_view(image, fp) -> None:
    """The image's residual under the top model's geometry and its spectrum."""
    res = residuals_of([image], fp.extractor, fp.crop, fp.border, get_store(), pad=True)[0]
    c1, c2 = st.columns(2)
    c1.image(enlarge(to_rgb8(res), 192), caption=f"residual ({fp.extractor}, crop {fp.crop})", width="stretch")
    c2.image(enlarge(spectrum8(res), 192), caption="residual spectrum (log |FFT|)", width="stretch")


def provenance_of(image, raw: bytes | None):
    """The file's provenance signals, read once per session and file (the watermark decode is slow)."""
    if raw is None:
        return None
    cache = st.session_state.setdefault("prov_results", {})
    if image.sha256 not in cache:
        if len(cache) > 64:
            cache.clear()
        cache[image.sha256] = read_provenance(raw, name=image.source)
    return cache[image.sha256]


def provenance_view(prov) -> None:
    """The watermark and metadata signals behind the headline's provenance part."""
    if prov is None:
        return
    with st.expander(
        f"Provenance signals ({len(prov.signals)}): {', '.join(prov.generators()) or 'no generator named'}"
    ):
        for s in prov.signals:
            st.markdown(f"**{s.strength}** · {s.kind}: `{s.value}`  \n{s.evidence}")
        if not prov.signals:
            st.caption("No watermark or generation metadata found (absence says nothing: metadata is easily stripped).")
        for problem in prov.problems:
            st.caption(f"problem: {problem}")


def metadata_view(raw: bytes | None, index: int) -> None:
    with st.expander("Metadata (EXIF, XMP, software, C2PA)"):
        if raw is None:
            st.caption("not available for this file")
            return
        meta = image_metadata(raw)
        st.write(
            f"C2PA manifest present: **{'yes' if meta.get('c2pa_manifest') else 'no'}**; software tag: "
            f"**{meta.get('software') or 'none'}**"
        )
        st.dataframe(pd.DataFrame(metadata_rows(raw)), hide_index=True, width="stretch", key=f"attr_meta_{index}")


def show_result(image, result, verdict: Verdict, prov, fps_by_name: dict, raw: bytes | None, index: int) -> None:
    st.markdown(f"#### {image.source}: {verdict.headline('**')}")
    for line in result.warnings:
        st.warning(line)
    c1, c2 = st.columns([1, 2])
    crop = max((fp.crop for fp in fps_by_name.values()), default=0)
    h, w = image.pixels.shape[:2]
    boxes = [tuple(b) for b in result.tiles] or [centre_box(h, w, crop)]  # the tiles attribution scored
    c1.image(
        with_boxes(image.pixels, boxes),
        width="stretch",
        caption=f"{image.original_size[0]}x{image.original_size[1]} {image.format}; red: the analysed "
        f"region{'s' if len(boxes) > 1 else ''} "
        f"({', '.join(f'{bw}x{bh} at ({left}, {top})' for top, left, bh, bw in boxes)}); "
        f"{'their correlations are averaged; ' if len(boxes) > 1 else ''}the rest of the image is not used",
    )
    models = [r["model"] for r in result.ranking]
    scores = [float(r.get("score", 0.0)) for r in result.ranking]
    c2.plotly_chart(
        ranking_bars(models, scores, result.verdict if result.verdict != "unknown" else None),
        width="stretch",
        key=f"attr_bars_{index}",
    )
    with st.expander("Residual and spectrum"):
        with guarded("residual"):
            top = fps_by_name.get(models[0]) if models else None
            if top is not None:
                residual_view(image, top)
    provenance_view(prov)
    metadata_view(raw, index)


def summary(verdicts: list[Verdict], results, fps, provs) -> None:
    """The batch at a glance: one row per image, as CSV and as a self-contained case report."""
    frame = pd.DataFrame([{**v.row(), "warnings": "; ".join(v.warnings + v.disagreements)} for v in verdicts])
    st.subheader(f"Summary ({len(verdicts)} image{'s' if len(verdicts) != 1 else ''})")
    st.dataframe(frame.drop(columns=["sha256"]), hide_index=True, width="stretch", key="attr_summary")
    page = case_report_html(
        verdicts, results, fps, [[s.to_dict() for s in p.signals] if p is not None else [] for p in provs]
    )
    c1, c2 = st.columns(2)
    c1.download_button(
        "Download summary CSV",
        data=frame.to_csv(index=False).encode(),
        file_name="attribution.csv",
        mime="text/csv",
        key="attr_csv",
    )
    c2.download_button(
        "Download case report (HTML)",
        data=page.encode(),
        file_name="case_report.html",
        mime="text/html",
        key="attr_report",
    )
    st.caption(
        "The case report holds file names and SHA-256, verdicts and confidences, the models compared with their "
        "held-out "
        "accuracy, provenance signals, warnings and the engine version, in one HTML file that opens anywhere."
    )


def attribute_batch(batch, chosen: list[str], offsets: bool = True) -> None:
    results, fps = attributions(batch.images, chosen, batch.data, offsets)
    by_name = {fp.name: fp for fp in fps}
    provs = [provenance_of(im, batch.data.get(im.source)) for im in batch.images]
    verdicts = []
    for result, prov in zip(results, provs):
        fp = by_name.get(result.verdict)
        lines = compare(prov, result.verdict, fp.metadata if fp is not None else None) if prov is not None else []
        verdicts.append(summarise(result, lines))
    summary(verdicts, results, fps, provs)
    indices = list(range(len(results)))
    if len(results) > DETAIL_ALL:  # a long batch: one image's details at a time, picked from the table's files
        pick = st.selectbox(
            "Details for", indices, format_func=lambda i: f"{results[i].source}: {verdicts[i].label}", key="attr_detail"
        )
        indices = [pick]
    for i in indices:
        with st.container(border=True):
            show_result(
                batch.images[i], results[i], verdicts[i], provs[i], by_name, batch.data.get(batch.images[i].source), i
            )


st.title("Attribute")
st.caption(
    "Upload suspect images: each is scored against every selected model's fingerprint. The headline gives the verdict "
    "with "
    "its calibrated confidence, or says inconclusive / unknown, and flags near-ties and provenance that disagrees."
)
names: list[str] = []
with guarded("models"):
    names = get_store().names()
uploads = st.file_uploader("Suspect images (or a zip)", type=IMAGE_TYPES, accept_multiple_files=True, key="attr_upload")
chosen = st.multiselect("Compare against", names, default=names, key="attr_models") if names else []
offsets = st.checkbox(
    "Read shifted and offset crops too",
    value=True,
    key="attr_offsets",
    help="Also read an image whose 8-pixel pattern sits off the grid with each model's offset reading (phase), as "
    "dif attribute does by default (--no-offsets turns it off). Its cut shares the model's false-positive budget; "
    "off, a copy shifted by one pixel reads as chance (docs/RESULTS.md, Robustness).",
)
samples = st.session_state.get(SAMPLES_KEY) if not uploads else None
if samples:
    truths = "; ".join(f"{Path(path).name}: {truth}" for path, truth in samples)
    st.info(
        f"Attributing {len(samples)} sample image(s) from the store's held-out test sets (picked on the Models page); "
        f"true sources: {truths}. Upload your own above."
    )
    st.button("Clear the samples", key="attr_clear_samples", on_click=lambda: st.session_state.pop(SAMPLES_KEY, None))
if not names:
    st.info("No models in the store yet (see the Models page).")
elif uploads or samples:
    batch = read_uploads(uploads or [ServerFile(path) for path, _ in samples])
    for line in batch.problems:
        st.error(line)
    with guarded("attribution"):
        if not chosen:
            raise ConfigError("no models selected: pick at least one model to compare against")
        if batch.images:
            attribute_batch(batch, chosen, offsets)
