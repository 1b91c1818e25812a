"""Scoring an inferred lineage against a known one (the demo zoo's): family ARI, parent-child recall."""

from __future__ import annotations

import networkx as nx
from sklearn.metrics import adjusted_rand_score

from engine.errors import ConfigError


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
