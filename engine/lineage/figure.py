"""The interactive lineage figure (plotly, the dashboard's and the HTML page's), imported only when drawn."""

from __future__ import annotations

import networkx as nx

from engine.errors import ConfigError
from engine.lineage.infer import families
from engine.lineage.layout import layout, palette


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
                marker={"size": 22, "color": palette(f), "line": {"width": 1, "color": "#333"}},
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
