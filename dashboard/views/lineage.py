"""Lineage page: the inferred family tree, thresholds that redraw it, a metadata editor, exports, Share."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.crossdata import cross_for, default_params, lineage_graph, require
from dashboard.reports import load_view, save_view
from dashboard.state import get_store
from dashboard.ui import guarded

META_FIELDS = ("release_date", "base_model", "notes")


def stored_metadata(names: list[str]) -> dict[str, dict]:
    store = get_store()
    out = {}
    for name in names:
        meta = store.load(name).metadata or {}
        out[name] = {k: str(meta.get(k) or "") for k in META_FIELDS}
    return out


def metadata_editor(initial: dict[str, dict], key: str) -> dict[str, dict]:
    """Editable table of release date / declared base per model; what it returns orients the edges."""
    frame = pd.DataFrame([{"model": n, **{k: v.get(k, "") for k in META_FIELDS}} for n, v in initial.items()])
    edited = st.data_editor(
        frame,
        key=key,
        hide_index=True,
        disabled=["model"],
        width="stretch",
        column_config={
            "release_date": st.column_config.TextColumn("release date", help="YYYY-MM-DD"),
            "base_model": st.column_config.TextColumn("declared base model"),
        },
    )
    out: dict[str, dict] = {}
    for row in edited.to_dict("records"):
        fields = {k: str(row.get(k) or "").strip() for k in META_FIELDS}
        out[str(row["model"])] = {k: v for k, v in fields.items() if v}
    return out


def threshold_inputs(initial: dict[str, Any]) -> dict[str, Any]:
    params = dict(initial)
    c1, c2, c3 = st.columns(3)
    for col, field in ((c1, "family_threshold"), (c2, "edge_threshold")):
        if field in params:
            params[field] = col.slider(field.replace("_", " "), 0.0, 1.0, float(params[field]), 0.01, key=f"lin_{field}")
    if "affinity" in params:
        options = list(require("lineage", "lineage inference").AFFINITIES)
        current = params["affinity"] if params["affinity"] in options else options[0]
        params["affinity"] = c3.selectbox("affinity", options, index=options.index(current), key="lin_affinity")
    return params


def edge_table(graph) -> None:
    rows = []
    for u, v, data in graph.edges(data=True):
        rows.append({"from": u, "to": v, **{k: (round(x, 3) if isinstance(x, float) else x) for k, x in data.items()}})
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="lin_edges")
    else:
        st.caption("No edges at these thresholds.")


def exports(graph) -> None:
    lineage = require("lineage", "lineage inference")
    c1, c2, c3, c4 = st.columns(4)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lineage.graphml"
        lineage.to_graphml(graph, path)
        c1.download_button("GraphML", data=path.read_bytes(), file_name="lineage.graphml", mime="application/xml", key="exp_graphml")
    c2.download_button("JSON", data=json.dumps(lineage.to_node_link(graph), indent=2, default=str).encode(), file_name="lineage.json", mime="application/json", key="exp_json")
    c3.download_button("HTML", data=lineage.to_html(graph, "DIF lineage").encode(), file_name="lineage.html", mime="text/html", key="exp_html")
    with guarded("PNG export"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "lineage.png"
            lineage.to_png(graph, path)
            c4.download_button("PNG", data=path.read_bytes(), file_name="lineage.png", mime="image/png", key="exp_png")


def share(models: list[str], params: dict, metadata: dict, cross_dict: dict) -> None:
    if st.button("Share this view", type="primary", key="lin_share"):
        report_id = save_view(get_store(), models, params, metadata, cross_dict)
        st.query_params["report"] = report_id
        st.session_state["lin_shared"] = report_id
    shared = st.session_state.get("lin_shared")
    if shared:
        st.success(f"Saved as report `{shared}`. Send teammates this page's address: it ends with `?report={shared}`.")
        st.code(f"/lineage?report={shared}", language=None)


def draw(graph) -> None:
    lineage = require("lineage", "lineage inference")
    st.plotly_chart(lineage.lineage_figure(graph), width="stretch", key="lin_graph")
    st.caption("Colours = families, edge width = affinity; labels give both cross-detection accuracies.")


def live_view() -> None:
    names = get_store().names()
    if not names:
        st.info("No models in the store yet (see the Models page).")
        return
    chosen = st.multiselect("Models", names, default=names[:24], key="lin_models")
    if not chosen:
        st.error("No models selected: pick at least one model.")
        return
    result = cross_for(chosen)
    params = threshold_inputs(default_params())
    with st.expander("Metadata (orients edges)", expanded=False):
        metadata = metadata_editor(stored_metadata(chosen), key=f"lin_meta_{abs(hash(tuple(chosen)))}")  # new table per model set
        if st.button("Save metadata to the store", key="lin_meta_save"):
            store = get_store()
            for name, meta in metadata.items():
                base = dict(store.load(name).metadata or {})
                base.update({k: meta.get(k) for k in META_FIELDS if meta.get(k)})
                for k in META_FIELDS:
                    if not meta.get(k):
                        base.pop(k, None)
                store.update_metadata(name, base)
            st.success("Metadata saved.")
    graph = lineage_graph(result, metadata, params)
    draw(graph)
    edge_table(graph)
    exports(graph)
    share(list(result.names), params, metadata, result.to_dict())


def report_view(report_id: str) -> None:
    payload = load_view(get_store(), report_id)
    cross = require("cross", "cross-detection")
    st.info(f"Shared report `{report_id}` saved {payload.get('created', '')}: {len(payload['models'])} models.")
    if st.button("Back to the live view", key="lin_leave_report"):
        del st.query_params["report"]
        st.rerun()
    result = cross.CrossResult.from_dict(payload["cross"])
    params = threshold_inputs({**default_params(), **payload.get("params", {})})
    with st.expander("Metadata (orients edges)", expanded=False):
        metadata = metadata_editor({n: payload.get("metadata", {}).get(n, {}) for n in result.names}, key=f"rep_meta_{report_id}")
    graph = lineage_graph(result, metadata, params)
    draw(graph)
    edge_table(graph)
    exports(graph)


st.title("Lineage")
report = st.query_params.get("report")
with guarded("lineage"):
    if report:
        report_view(report)
    else:
        live_view()
