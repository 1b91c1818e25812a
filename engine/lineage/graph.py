"""Lineage inference: from a cross-detection matrix to families and a tree of relations (networkx).

Affinity of a pair = min (or geometric mean) of C[i][j] and C[j][i]: a relation counts only when both
detectors flag each other's images, so an asymmetric pair (one broad detector) is not a relation.

- Families: average-linkage agglomeration on the affinity: two groups merge while the mean affinity
  over all their cross pairs is >= ``family_threshold``. Average (not single) linkage stops one
  noisy pair from chaining two families together.
- Within a family: a maximum spanning tree of the pairs with affinity >= ``edge_threshold``.
- Direction: cross-detection is symmetric in what it can tell, so an edge is oriented only from user
  metadata (a declared ``base_model``, else an older ``release_date`` = parent). Otherwise the edge is
  stored with ``directed=False``; no direction is ever invented.

The graph is a ``networkx.DiGraph``; an undirected edge is stored once (u < v by name) with
``directed=False``. Exports: GraphML, node-link JSON, a standalone HTML page, a PNG, a plotly figure.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
from sklearn.metrics import adjusted_rand_score

from engine.errors import ConfigError
from engine.lineage.cross import CrossResult

DEFAULT_FAMILY_THRESHOLD = 0.7  # mean mutual balanced accuracy for one family (0.5 = chance)
DEFAULT_EDGE_THRESHOLD = 0.65  # weakest mutual accuracy a tree edge may have
AFFINITIES = ("min", "geomean")
SUMMARY_FIELDS = ("method", "extractor", "crop", "n_real", "n_fake", "mu_real", "mu_fake", "test_accuracy", "created")
ORIENTING_KEYS = ("base_model", "release_date")


@dataclass(frozen=True)
class LineageParams:
    """Thresholds on balanced accuracy (0.5 = chance, 1 = perfect); see the module docstring."""

    family_threshold: float = DEFAULT_FAMILY_THRESHOLD
    edge_threshold: float = DEFAULT_EDGE_THRESHOLD
    affinity: str = "min"

    def __post_init__(self) -> None:
        if self.affinity not in AFFINITIES:
            raise ConfigError(f"unknown affinity {self.affinity!r} (choose from {', '.join(AFFINITIES)})")
        for key in ("family_threshold", "edge_threshold"):
            value = getattr(self, key)
            if not (0.0 <= value <= 1.0) or math.isnan(value):
                raise ConfigError(f"{key} {value} must be within 0..1 (balanced accuracy)")


def affinity_matrix(accuracy: np.ndarray, kind: str = "min") -> np.ndarray:
    """Symmetric affinity of C and C^T; the diagonal is 1. A missing cell (NaN) counts as chance."""
    c = np.clip(np.nan_to_num(np.asarray(accuracy, dtype=float), nan=0.5), 0.0, 1.0)
    a = np.minimum(c, c.T) if kind == "min" else np.sqrt(c * c.T)
    np.fill_diagonal(a, 1.0)
    return a


def cluster(affinity: np.ndarray, threshold: float) -> list[list[int]]:
    """Average-linkage groups: merge the closest pair of groups while their mean affinity >= threshold."""
    groups = [[i] for i in range(affinity.shape[0])]
    while len(groups) > 1:
        best, pair = -1.0, None
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                mean = float(affinity[np.ix_(groups[a], groups[b])].mean())
                if mean > best:
                    best, pair = mean, (a, b)
        if pair is None or best < threshold:
            break
        a, b = pair
        groups[a] = sorted(groups[a] + groups[b])
        del groups[b]
    return sorted(groups, key=lambda g: g[0])


def confidence(aff: float) -> float:
    """0 at chance (0.5), 1 at perfect mutual detection: 2 * (affinity - 0.5), clipped."""
    return float(min(1.0, max(0.0, 2.0 * (aff - 0.5))))


def orient(u: str, v: str, metadata: dict[str, dict]) -> tuple[str, str, str] | None:
    """(parent, child, reason) from user metadata, or None when it says nothing."""
    mu, mv = metadata.get(u) or {}, metadata.get(v) or {}
    if mv.get("base_model") == u:
        return u, v, f"{v} declares base_model {u}"
    if mu.get("base_model") == v:
        return v, u, f"{u} declares base_model {v}"
    du, dv = mu.get("release_date"), mv.get("release_date")
    if isinstance(du, str) and isinstance(dv, str) and du and dv and du != dv:
        return (
            (u, v, f"{u} released {du}, before {v} ({dv})")
            if du < dv
            else (v, u, f"{v} released {dv}, before {u} ({du})")
        )
    return None


def _scalar(value: Any) -> Any:
    """GraphML takes str/int/float/bool only: None is left out, containers become JSON text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return json.dumps(value, sort_keys=True, default=str)


def _node_attrs(name: str, family: int, card: dict, meta: dict) -> dict:
    attrs: dict[str, Any] = {"family": int(family)}
    if "test_accuracy" not in card and isinstance(card.get("test_metrics"), dict):  # a full card, not a summary
        card = dict(card, test_accuracy=card["test_metrics"].get("accuracy"))
    for key in SUMMARY_FIELDS:
        if card.get(key) is not None:
            attrs[key] = _scalar(card[key])
    for key, value in sorted(meta.items()):
        if value is not None:
            attrs[f"meta_{key}"] = _scalar(value)
    return attrs


def infer_lineage(
    cross: CrossResult,
    metadata: dict[str, dict] | None = None,
    params: LineageParams = LineageParams(),
    cards: dict[str, dict] | None = None,
) -> nx.DiGraph:
    """Families and per-family maximum spanning trees from a cross-detection result."""
    names = list(cross.names)
    metadata = metadata or {}
    cards = cards or {}
    c = np.nan_to_num(np.asarray(cross.accuracy, dtype=float), nan=0.5)
    aff = affinity_matrix(c, params.affinity)
    groups = cluster(aff, params.family_threshold)
    graph = nx.DiGraph(
        family_threshold=params.family_threshold,
        edge_threshold=params.edge_threshold,
        affinity=params.affinity,
        note="edges with directed=False have no known direction: cross-detection is symmetric, only user metadata "
        "(base_model, release_date) orients an edge",
    )
    family_of = {}
    for f, group in enumerate(groups):
        for i in group:
            family_of[names[i]] = f
            graph.add_node(names[i], **_node_attrs(names[i], f, cards.get(names[i], {}), metadata.get(names[i], {})))
    for group in groups:
        candidates = nx.Graph()
        candidates.add_nodes_from(group)
        for a in group:
            for b in group:
                if a < b and aff[a, b] >= params.edge_threshold:
                    candidates.add_edge(a, b, weight=float(aff[a, b]))
        tree = nx.maximum_spanning_tree(candidates, weight="weight", algorithm="kruskal")
        for a, b in sorted(tree.edges()):
            u, v = sorted((names[a], names[b]))
            iu, iv = names.index(u), names.index(v)
            attrs = {
                "c_ij": float(c[iu, iv]),  # detector u on v's images
                "c_ji": float(c[iv, iu]),  # detector v on u's images
                "affinity": float(aff[iu, iv]),
                "confidence": confidence(float(aff[iu, iv])),
                "directed": False,
                "orientation": "unknown (no metadata)",
            }
            oriented = orient(u, v, metadata)
            if oriented is not None:
                parent, child, reason = oriented
                if parent != u:  # keep c_ij = detector(source) on target's images
                    attrs["c_ij"], attrs["c_ji"] = attrs["c_ji"], attrs["c_ij"]
                u, v = parent, child
                attrs["directed"] = True
                attrs["orientation"] = reason
            graph.add_edge(u, v, **attrs)
    return graph


def families(graph: nx.DiGraph) -> list[list[str]]:
    """Inferred families as sorted name lists, ordered by their family id."""
    out: dict[int, list[str]] = {}
    for node, data in graph.nodes(data=True):
        out.setdefault(int(data.get("family", 0)), []).append(node)
    return [sorted(out[k]) for k in sorted(out)]


def adjusted_rand_index(labels_true: list, labels_pred: list) -> float:
    """Adjusted Rand index of two labelings of the same items (1 = identical partitions)."""
    if len(labels_true) != len(labels_pred):
        raise ValueError("labelings differ in length")
    if len(labels_true) < 2:
        return 1.0
    return float(adjusted_rand_score([str(x) for x in labels_true], [str(x) for x in labels_pred]))


def truth_from_metadata(metadata: dict[str, dict]) -> dict:
    """Ground truth from models' metadata ``family`` / ``parent`` (the zoo writes them); {} if none."""
    models = {
        n: {"family": m.get("family"), "parent": m.get("parent")}
        for n, m in metadata.items()
        if isinstance(m, dict) and m.get("family") is not None
    }
    return {"models": models} if models else {}


def score_lineage(graph: nx.DiGraph, truth: dict) -> dict:
    """ARI of inferred vs true families, and the share of true parent-child pairs joined by an edge
    (a directed edge must also point from parent to child).

    ``truth``: {"models": {name: {"family": ..., "parent": name or None}}} (or that inner dict).
    Only models present in both the graph and the truth are scored.
    """
    models = truth.get("models", truth)
    names = sorted(n for n in graph.nodes if n in models)
    if not names:
        raise ConfigError("no model of the graph has ground truth")
    ari = adjusted_rand_index([str(models[n].get("family")) for n in names], [graph.nodes[n]["family"] for n in names])
    pairs = [(models[n]["parent"], n) for n in names if models[n].get("parent") in names]
    found, directed_right = [], 0
    for parent, child in pairs:
        if graph.has_edge(parent, child):
            found.append([parent, child])
            directed_right += bool(graph.edges[parent, child].get("directed"))
        elif graph.has_edge(child, parent) and not graph.edges[child, parent].get("directed"):
            found.append([parent, child])
    true_edges = {frozenset(p) for p in pairs}
    extra = [[u, v] for u, v in graph.edges if frozenset((u, v)) not in true_edges]
    return {
        "ari": round(ari, 4),
        "parent_child_recall": round(len(found) / len(pairs), 4) if pairs else None,
        "parent_child_found": found,
        "parent_child_pairs": [list(p) for p in pairs],
        "directed_correct": directed_right,
        "edges_not_in_truth": extra,
        "n_models": len(names),
    }


# ---------------------------------------------------------------- exports
def to_node_link(graph: nx.DiGraph) -> dict:
    """Node-link JSON (the d3 / networkx ``node_link_data`` layout, key ``links``)."""
    return {
        "directed": True,
        "multigraph": False,
        "graph": {k: _scalar(v) for k, v in graph.graph.items()},
        "nodes": [{"id": n, **{k: _scalar(v) for k, v in d.items()}} for n, d in graph.nodes(data=True)],
        "links": [
            {"source": u, "target": v, **{k: _scalar(x) for k, x in d.items()}} for u, v, d in graph.edges(data=True)
        ],
    }


def from_node_link(data: dict) -> nx.DiGraph:
    """Inverse of :func:`to_node_link`."""
    graph = nx.DiGraph(**data.get("graph", {}))
    for node in data.get("nodes", []):
        attrs = dict(node)
        graph.add_node(attrs.pop("id"), **attrs)
    for link in data.get("links", []):
        attrs = dict(link)
        graph.add_edge(attrs.pop("source"), attrs.pop("target"), **attrs)
    return graph


def to_graphml(graph: nx.DiGraph, path: str | Path) -> Path:
    """GraphML for Gephi/Cytoscape/yEd; attributes are scalars (None left out)."""
    clean = nx.DiGraph(**{k: _scalar(v) for k, v in graph.graph.items() if v is not None})
    for n, d in graph.nodes(data=True):
        clean.add_node(n, **{k: _scalar(v) for k, v in d.items() if v is not None})
    for u, v, d in graph.edges(data=True):
        clean.add_edge(u, v, **{k: _scalar(x) for k, x in d.items() if x is not None})
    path = Path(path)
    nx.write_graphml(clean, str(path))
    return path


def layout(graph: nx.DiGraph) -> dict[str, tuple[float, float]]:
    """Deterministic tree layout: families side by side, each drawn top-down: by generation when all
    its edges are oriented, else breadth-first from the node with the largest summed affinity."""
    pos: dict[str, tuple[float, float]] = {}
    x0 = 0.0
    for fam in families(graph):
        sub = graph.subgraph(fam)
        und = sub.to_undirected()
        depth: dict[str, int] = {}
        if sub.number_of_edges() and all(d.get("directed") for _, _, d in sub.edges(data=True)):
            for level, members in enumerate(nx.topological_generations(sub)):  # oriented: parents above children
                depth.update({n: level for n in members})
        else:
            strength = {n: sum(d.get("affinity", 0.0) for _, _, d in und.edges(n, data=True)) for n in fam}
            for comp in sorted(nx.connected_components(und), key=min):
                start = max(sorted(comp), key=lambda n: strength[n])
                depth[start] = 0
                for a, b in nx.bfs_edges(und, start):
                    depth[b] = depth[a] + 1
        levels: dict[int, list[str]] = {}
        for n in sorted(fam):
            levels.setdefault(depth.get(n, 0), []).append(n)
        width = max(len(v) for v in levels.values())
        for d, members in levels.items():
            for k, n in enumerate(members):
                pos[n] = (x0 + k + (width - len(members)) / 2.0, -float(d))
        x0 += width + 0.8
    return pos


def _palette(i: int) -> str:
    colors = [
        "#4C78A8",
        "#F58518",
        "#54A24B",
        "#E45756",
        "#72B7B2",
        "#B279A2",
        "#FF9DA6",
        "#9D755D",
        "#EECA3B",
        "#BAB0AC",
    ]
    return colors[i % len(colors)]


def lineage_figure(graph: nx.DiGraph, title: str = "Model lineage"):
    """An interactive plotly figure: nodes coloured by family, edges labelled with C[i][j] / C[j][i]."""
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise ConfigError("the interactive lineage graph needs plotly: pip install 'dif-lineage[dashboard]'") from None

    pos = layout(graph)
    fig = go.Figure()
    annotations = []
    for u, v, d in graph.edges(data=True):
        (x1, y1), (x2, y2) = pos[u], pos[v]
        dash = "solid" if d.get("directed") else "dot"
        width = 1 + 5 * float(d.get("confidence", 0))
        fig.add_trace(
            go.Scatter(
                x=[x1, x2],
                y=[y1, y2],
                mode="lines",
                line={"width": width, "color": "#888", "dash": dash},
                hoverinfo="skip",
                showlegend=False,
            )
        )
        text = f"{d.get('c_ij', 0):.2f} / {d.get('c_ji', 0):.2f}"
        fig.add_trace(
            go.Scatter(
                x=[(x1 + x2) / 2],
                y=[(y1 + y2) / 2],
                mode="markers",
                marker={"size": 10, "color": "rgba(0,0,0,0)"},
                showlegend=False,
                hovertext=f"{u} → {v}" if d.get("directed") else f"{u} — {v} (direction unknown)",
                hovertemplate="%{hovertext}<br>"
                + f"C[{u}][{v}] {d.get('c_ij', 0):.3f}<br>C[{v}][{u}] {d.get('c_ji', 0):.3f}<br>affinity "
                f"{d.get('affinity', 0):.3f}<br>confidence "
                f"{d.get('confidence', 0):.2f}<br>{d.get('orientation', '')}<extra></extra>",
            )
        )
        annotations.append(
            {
                "x": (x1 + x2) / 2,
                "y": (y1 + y2) / 2,
                "text": text,
                "showarrow": False,
                "font": {"size": 10, "color": "#555"},
                "bgcolor": "rgba(255,255,255,0.7)",
            }
        )
        if d.get("directed"):
            annotations.append(
                {
                    "x": x2,
                    "y": y2,
                    "ax": x1,
                    "ay": y1,
                    "xref": "x",
                    "yref": "y",
                    "axref": "x",
                    "ayref": "y",
                    "showarrow": True,
                    "arrowhead": 3,
                    "arrowsize": 1.5,
                    "standoff": 14,
                    "text": "",
                    "arrowcolor": "#666",
                }
            )
    for f, fam in enumerate(families(graph)):
        hover = []
        for n in fam:
            d = graph.nodes[n]
            acc = d.get("test_accuracy")
            hover.append(
                f"<b>{n}</b><br>family {f}<br>test accuracy {acc if acc is None else f'{acc:.3f}'}<br>"
                + "<br>".join(f"{k[5:]}: {v}" for k, v in d.items() if k.startswith("meta_"))
            )
        fig.add_trace(
            go.Scatter(
                x=[pos[n][0] for n in fam],
                y=[pos[n][1] for n in fam],
                mode="markers+text",
                text=fam,
                textposition="bottom center",
                marker={"size": 22, "color": _palette(f), "line": {"width": 1, "color": "#333"}},
                name=f"family {f}",
                hovertext=hover,
                hovertemplate="%{hovertext}<extra></extra>",
            )
        )
    fig.update_layout(
        title=title,
        annotations=annotations,
        plot_bgcolor="white",
        hovermode="closest",
        height=520,
        xaxis={"visible": False},
        yaxis={"visible": False, "scaleanchor": None},
        legend={"orientation": "h"},
        margin={"l": 20, "r": 20, "t": 60, "b": 20},
    )
    return fig


def to_html(graph: nx.DiGraph, title: str = "DIF Lineage: inferred model families") -> str:
    """A standalone page (plotly.js embedded, works offline, no server): the graph and its edge table."""
    import html

    fig = lineage_figure(graph, title)
    body = fig.to_html(include_plotlyjs=True, full_html=False)
    rows = "".join(
        f"<tr><td>{html.escape(u)}</td><td>{'→' if d.get('directed') else '—'}</td><td>{html.escape(v)}</td>"
        f"<td>{d.get('c_ij', 0):.3f}</td><td>{d.get('c_ji', 0):.3f}</td><td>{d.get('affinity', 0):.3f}</td>"
        f"<td>{d.get('confidence', 0):.2f}</td><td>{html.escape(str(d.get('orientation', '')))}</td></tr>"
        for u, v, d in graph.edges(data=True)
    )
    fams = "".join(f"<li>family {i}: {html.escape(', '.join(f))}</li>" for i, f in enumerate(families(graph)))
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid "
        "#ccc;padding:3px 8px}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}<h2>Families</h2><ul>{fams}</ul>"
        "<h2>Edges</h2><p>C[u][v]: balanced accuracy of u's detector on v's held-out images. A dotted edge (—) has no "
        "known direction: "
        "only user metadata (declared base model, release date) orients an edge.</p>"
        f"<table><tr><th>u</th><th></th><th>v</th><th>C[u][v]</th><th>C[v][u]</th><th>affinity</th><th>confidence</th><th>orientation</th></tr>{rows}</table>"
        "</body></html>\n"
    )


PNG_FONT_SIZE = 15  # Pillow's default font at its default size 10 draws a space 2 px wide: words ran together


def _label(draw, xy: tuple[float, float], text: str, font, fill=(0, 0, 0), anchor: str = "mm") -> None:
    """Text on a white box, so crossing edges never make it unreadable."""
    box = draw.textbbox(xy, text, font=font, anchor=anchor)
    draw.rectangle([box[0] - 3, box[1] - 2, box[2] + 3, box[3] + 2], fill=(255, 255, 255))
    draw.text(xy, text, fill=fill, font=font, anchor=anchor)


def _png_legend(draw, graph: nx.DiGraph, font, top: float, width: int) -> None:
    """Families by colour, and what the edges' width, arrows and labels mean."""
    draw.line([(20, top), (width - 20, top)], fill=(200, 200, 200), width=1)
    x, y = 20.0, top + 14
    for f, fam in enumerate(families(graph)):
        text = f"family {f}: {', '.join(fam)}"
        w = draw.textlength(text, font=font) + 40
        if x + w > width - 20:
            x, y = 20.0, y + 24
        draw.ellipse([x, y, x + 16, y + 16], fill=_palette(f), outline=(40, 40, 40))
        draw.text((x + 22, y + 8), text, fill=(0, 0, 0), font=font, anchor="lm")
        x += w
    y += 30
    for line in (
        "Edge label C[u][v] / C[v][u]: balanced accuracy of each detector on the other's images (0.5 = chance).",
        "Thicker edge = stronger mutual detection. Arrow = direction from metadata (base model or release date); no "
        "arrow = direction unknown.",
    ):
        draw.text((20, y), line, fill=(60, 60, 60), font=font)
        y += 22


def to_png(graph: nx.DiGraph, path: str | Path, size: tuple[int, int] = (1200, 720)) -> Path:
    """A static picture drawn with Pillow (no extra dependency): the graph above, its legend below."""
    from PIL import Image, ImageDraw, ImageFont

    pos = layout(graph)
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=PNG_FONT_SIZE)
    legend_top = size[1] - 130
    if pos:
        xs, ys = [p[0] for p in pos.values()], [p[1] for p in pos.values()]
        pad_x, pad_top, pad_bottom = 110, 50, 60
        sx = (size[0] - 2 * pad_x) / max(max(xs) - min(xs), 1e-9)
        sy = (legend_top - pad_top - pad_bottom) / max(max(ys) - min(ys), 1e-9)
        px = {
            n: (
                pad_x + (x - min(xs)) * sx if max(xs) > min(xs) else size[0] / 2,
                pad_top + (max(ys) - y) * sy if max(ys) > min(ys) else (legend_top - pad_bottom + pad_top) / 2,
            )
            for n, (x, y) in pos.items()
        }
        for u, v, d in graph.edges(data=True):
            (x1, y1), (x2, y2) = px[u], px[v]
            draw.line([(x1, y1), (x2, y2)], fill=(120, 120, 120), width=1 + int(5 * d.get("confidence", 0)))
            if d.get("directed"):
                ang = math.atan2(y2 - y1, x2 - x1)
                tip = (x2 - 18 * math.cos(ang), y2 - 18 * math.sin(ang))
                wing = [(tip[0] - 14 * math.cos(ang + s), tip[1] - 14 * math.sin(ang + s)) for s in (0.45, -0.45)]
                draw.polygon([tip, *wing], fill=(70, 70, 70))
        placed: list[tuple[float, float, float, float]] = []
        for u, v, d in graph.edges(data=True):  # labels after all lines, so no line crosses a label
            (x1, y1), (x2, y2) = px[u], px[v]
            text = f"{d.get('c_ij', 0):.2f} / {d.get('c_ji', 0):.2f}"
            for t in (
                0.5,
                0.35,
                0.65,
                0.25,
                0.75,
                0.5,
            ):  # slide along the edge off labels already drawn (crossing edges)
                xy = (x1 + t * (x2 - x1), y1 + t * (y2 - y1))
                box = draw.textbbox(xy, text, font=font, anchor="mm")
                if not any(
                    box[0] < b[2] + 4 and b[0] < box[2] + 4 and box[1] < b[3] + 4 and b[1] < box[3] + 4 for b in placed
                ):
                    break
            placed.append(box)
            _label(draw, xy, text, font, fill=(70, 70, 70))
        for n, d in graph.nodes(data=True):
            x, y = px[n]
            draw.ellipse([x - 14, y - 14, x + 14, y + 14], fill=_palette(int(d.get("family", 0))), outline=(40, 40, 40))
            _label(draw, (x, y + 26), n, font)
    draw.text(
        (20, 14),
        "Model lineage inferred from cross-detection",
        fill=(0, 0, 0),
        font=ImageFont.load_default(size=PNG_FONT_SIZE + 3),
    )
    _png_legend(draw, graph, font, legend_top, size[0])
    path = Path(path)
    img.save(path, format="PNG")
    return path


def params_dict(params: LineageParams) -> dict:
    return asdict(params)
