"""The lineage graph written out: node-link JSON (and back), GraphML, a standalone HTML page, a PNG."""

from __future__ import annotations

import math
from pathlib import Path

import networkx as nx

from engine.lineage.figure import lineage_figure
from engine.lineage.infer import families, scalar
from engine.lineage.layout import layout, palette


def to_node_link(graph: nx.DiGraph) -> dict:
    """Node-link JSON (the d3 / networkx ``node_link_data`` layout, key ``links``)."""
    return {
        "directed": True,
        "multigraph": False,
        "graph": {k: scalar(v) for k, v in graph.graph.items()},
        "nodes": [{"id": n, **{k: scalar(v) for k, v in d.items()}} for n, d in graph.nodes(data=True)],
        "links": [
            {"source": u, "target": v, **{k: scalar(x) for k, x in d.items()}} for u, v, d in graph.edges(data=True)
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
    clean = nx.DiGraph(**{k: scalar(v) for k, v in graph.graph.items() if v is not None})
    for n, d in graph.nodes(data=True):
        clean.add_node(n, **{k: scalar(v) for k, v in d.items() if v is not None})
    for u, v, d in graph.edges(data=True):
        clean.add_edge(u, v, **{k: scalar(x) for k, x in d.items() if x is not None})
    path = Path(path)
    nx.write_graphml(clean, str(path))
    return path


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
        draw.ellipse([x, y, x + 16, y + 16], fill=palette(f), outline=(40, 40, 40))
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
            draw.ellipse([x - 14, y - 14, x + 14, y + 14], fill=palette(int(d.get("family", 0))), outline=(40, 40, 40))
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
