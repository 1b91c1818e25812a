"""Where each model sits and which colour its family gets, shared by the plotly figure and the PNG."""

from __future__ import annotations

import networkx as nx

from engine.lineage.infer import families


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


def palette(i: int) -> str:
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
