"""Lineage page: the inferred family tree, thresholds that redraw it, a metadata editor, exports, Share."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.crossdata import cross_noting_left_out, default_params, lineage_graph
from dashboard.reports import load_view, save_view
from dashboard.state import get_store
from dashboard.ui import guarded
from engine.lineage.cross import CrossResult
from engine.lineage.export import to_graphml, to_html, to_node_link, to_png
from engine.lineage.figure import lineage_figure
from engine.lineage.infer import AFFINITIES
from engine.lineage.scoring import score_lineage, truth_from_metadata
from engine.zoo.demo import DEMO_FAMILY_THRESHOLD
from engine.zoo.demo import MODELS as DEMO_MODELS

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


SLIDER_HELP = {
    "family_threshold": "Models join one family while their mean mutual cross-detection accuracy (affinity) is at "
    "least this. "
    "0.5 = chance: lower it to merge more models into families, raise it to split them.",
    "edge_threshold": "Within a family the page draws a tree of the strongest links; a link weaker than this is "
    "dropped. "
    "Lowering it below the family's weakest tree link changes nothing: the tree already holds every member.",
}
AFFINITY_HELP = (
    "How the two directions C[i][j] and C[j][i] combine: min (both must detect each other) or their geometric mean."
)


def threshold_inputs(initial: dict[str, Any], prefix: str = "lin") -> dict[str, Any]:
    params = dict(initial)
    c1, c2, c3 = st.columns(3)
    for col, field in ((c1, "family_threshold"), (c2, "edge_threshold")):
        if field in params:
            params[field] = col.slider(
                field.replace("_", " "),
                0.0,
                1.0,
                float(params[field]),
                0.01,
                key=f"{prefix}_{field}",
                help=SLIDER_HELP[field],
            )
    if "affinity" in params:
        options = list(AFFINITIES)
        current = params["affinity"] if params["affinity"] in options else options[0]
        params["affinity"] = c3.selectbox(
            "affinity", options, index=options.index(current), key=f"{prefix}_affinity", help=AFFINITY_HELP
        )
    return params


def edge_threshold_note(graph, params: dict[str, Any]) -> None:
    """Say when the edge slider is below every drawn link, where moving it further changes nothing."""
    weakest = min((float(d.get("affinity", 1.0)) for _, _, d in graph.edges(data=True)), default=None)
    if weakest is not None and params.get("edge_threshold", 0.0) < weakest:
        st.caption(
            f"Edge threshold {params['edge_threshold']:.2f} is below the weakest drawn link ({weakest:.2f}): lowering "
            "it further "
            f"changes nothing; raise it above {weakest:.2f} to drop weak links."
        )


def edge_table(graph) -> None:
    rows = []
    for u, v, data in graph.edges(data=True):
        rows.append({"from": u, "to": v, **{k: (round(x, 3) if isinstance(x, float) else x) for k, x in data.items()}})
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="lin_edges")
    else:
        st.caption("No edges at these thresholds.")


def exports(graph) -> None:
    c1, c2, c3, c4 = st.columns(4)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lineage.graphml"
        to_graphml(graph, path)
        c1.download_button(
            "GraphML", data=path.read_bytes(), file_name="lineage.graphml", mime="application/xml", key="exp_graphml"
        )
    c2.download_button(
        "JSON",
        data=json.dumps(to_node_link(graph), indent=2, default=str).encode(),
        file_name="lineage.json",
        mime="application/json",
        key="exp_json",
    )
    c3.download_button(
        "HTML",
        data=to_html(graph, "DIF lineage").encode(),
        file_name="lineage.html",
        mime="text/html",
        key="exp_html",
    )
    with guarded("PNG export"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "lineage.png"
            to_png(graph, path)
            c4.download_button("PNG", data=path.read_bytes(), file_name="lineage.png", mime="image/png", key="exp_png")


def share(models: list[str], params: dict, metadata: dict, cross_dict: dict) -> None:
    if st.button("Share this view", type="primary", key="lin_share"):
        report_id = save_view(get_store(), models, params, metadata, cross_dict)
        st.query_params["report"] = report_id
        st.session_state["lin_shared"] = report_id
    shared = st.session_state.get("lin_shared")
    if shared:
        st.success(f"Saved as report `{shared}`. Send teammates this address:")
        st.code(share_url(shared), language=None)


def share_url(report_id: str) -> str:
    """The full address of the shared view, from the address this browser used to reach the server."""
    here = str(st.context.url or "").split("?", 1)[0].rstrip("/")
    base = here.rsplit("/", 1)[0] if here.endswith("/lineage") else here
    return f"{base}/lineage?report={report_id}" if base.startswith("http") else f"/lineage?report={report_id}"


def draw(graph, title: str = "Model lineage", key: str = "lin_graph") -> None:
    st.plotly_chart(lineage_figure(graph, title), width="stretch", key=key)
    st.caption("Colours = families, edge width = affinity; labels give both cross-detection accuracies (0.5 = chance).")


def ground_truth(names: list[str]) -> dict:
    """Known families and parents (the demo zoo writes them into its models' metadata); {} when unknown."""
    store = get_store()
    truth = truth_from_metadata({n: store.load(n).metadata or {} for n in names})
    return truth if len(truth.get("models", {})) == len(names) else {}


def page_defaults(names: list[str], truth: dict) -> dict[str, Any]:
    """The engine's thresholds, or for the demo zoo the family threshold measured to recover its truth."""
    params = default_params()
    if truth and set(names) <= {m.name for m in DEMO_MODELS}:
        params["family_threshold"] = DEMO_FAMILY_THRESHOLD
    return params


def truth_graph(truth: dict, result):
    """The true lineage drawn like the inferred one: true families, parent -> child edges with their accuracies."""
    import networkx as nx

    models = truth["models"]
    fams = sorted({str(m["family"]) for m in models.values()})
    graph = nx.DiGraph()
    for name in result.names:
        graph.add_node(name, family=fams.index(str(models[name]["family"])))
    acc = result.accuracy
    for child in result.names:
        parent = models[child].get("parent")
        if parent in result.names:
            i, j = result.names.index(parent), result.names.index(child)
            c_ij, c_ji = (
                float(acc[i][j] if acc[i][j] is not None else 0.5),
                float(acc[j][i] if acc[j][i] is not None else 0.5),
            )
            graph.add_edge(
                parent,
                child,
                c_ij=c_ij,
                c_ji=c_ji,
                affinity=min(c_ij, c_ji),
                confidence=max(0.0, 2 * (min(c_ij, c_ji) - 0.5)),
                directed=True,
                orientation="ground truth",
            )
    return graph


def beside_truth(graph, truth: dict, result) -> None:
    """Inferred and true lineage side by side, with how well the one recovers the other."""
    score = score_lineage(graph, truth)
    engine_score = score_lineage(lineage_graph(result, None, default_params()), truth)
    recall = score["parent_child_recall"]
    c1, c2, c3 = st.columns(3)
    c1.metric(
        "Families recovered (ARI)",
        f"{score['ari']:.2f}",
        help="Adjusted Rand index of the inferred families against the truth: 1 = identical, 0 = chance.",
    )
    c2.metric(
        "Parent-child recall",
        "n/a" if recall is None else f"{recall:.2f}",
        help="Share of true parent-child pairs joined by an edge (a directed edge must point from parent to child).",
    )
    c3.metric("True parent-child pairs found", f"{len(score['parent_child_found'])}/{len(score['parent_child_pairs'])}")
    if score["ari"] < 1.0 or (recall is not None and recall < 1.0):
        missed = [f"{p} → {c}" for p, c in score["parent_child_pairs"] if [p, c] not in score["parent_child_found"]]
        st.warning(
            "These thresholds do not recover the truth exactly"
            + (f": families differ (ARI {score['ari']:.2f})" if score["ari"] < 1.0 else "")
            + (f"; missed parent-child pairs: {', '.join(missed)}" if missed else "")
            + ". Cross-detection sees shared traces, "
            "not the training history: a later checkpoint or a fine-tune of a fine-tune can sit closer to a sibling "
            "than to its parent."
        )
    st.caption(
        f"The engine's general defaults (family {default_params()['family_threshold']:.2f}, edge "
        f"{default_params()['edge_threshold']:.2f}) "
        f"give ARI {engine_score['ari']:.2f} here; the page opens the demo zoo at the family threshold measured to "
        "recover its families."
    )
    left, right = st.columns(2)
    with left:
        draw(graph, "Inferred from cross-detection")
    with right:
        draw(truth_graph(truth, result), "Ground truth (how the zoo was built)", key="lin_truth")


def live_view() -> None:
    names = get_store().names()
    if not names:
        st.info("No models in the store yet (see the Models page).")
        return
    chosen = st.multiselect("Models", names, default=names[:24], key="lin_models")
    if not chosen:
        st.error("No models selected: pick at least one model.")
        return
    result = cross_noting_left_out(chosen)
    if result is None:
        return
    chosen = list(result.names)
    truth = ground_truth(chosen)
    params = threshold_inputs(page_defaults(chosen, truth))
    with st.expander("Metadata (orients edges)", expanded=False):
        metadata = metadata_editor(
            stored_metadata(chosen), key=f"lin_meta_{abs(hash(tuple(chosen)))}"
        )  # new table per model set
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
    edge_threshold_note(graph, params)
    if truth:
        beside_truth(graph, truth, result)
    else:
        draw(graph)
    edge_table(graph)
    exports(graph)
    share(list(result.names), params, metadata, result.to_dict())


def report_view(report_id: str) -> None:
    payload = load_view(get_store(), report_id)
    st.info(f"Shared report `{report_id}` saved {payload.get('created', '')}: {len(payload['models'])} models.")
    result = CrossResult.from_dict(payload["cross"])
    params = threshold_inputs({**default_params(), **payload.get("params", {})}, prefix=f"rep_{report_id}")
    with st.expander("Metadata (orients edges)", expanded=False):
        metadata = metadata_editor(
            {n: payload.get("metadata", {}).get(n, {}) for n in result.names}, key=f"rep_meta_{report_id}"
        )
    graph = lineage_graph(result, metadata, params)
    draw(graph)
    edge_table(graph)
    exports(graph)


def leave_report() -> None:
    del st.query_params["report"]
    st.session_state.pop("lin_shared", None)


st.title("Lineage")
report = st.query_params.get("report")
if report:  # outside the guard: a bad or deleted report id still leaves a way back
    st.button("Back to the live view", key="lin_leave_report", on_click=leave_report)
with guarded("lineage"):
    if report:
        report_view(report)
    else:
        live_view()
