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
``directed=False``. Its attributes are already scalars (:func:`scalar`), so every exporter
(``lineage.export``) can write them as they are.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from engine.errors import ConfigError
from engine.lineage.cross import CrossResult

DEFAULT_FAMILY_THRESHOLD = 0.7  # mean mutual balanced accuracy for one family (0.5 = chance)
DEFAULT_EDGE_THRESHOLD = 0.65  # weakest mutual accuracy a tree edge may have
AFFINITIES = ("min", "geomean")
SUMMARY_FIELDS = ("method", "extractor", "crop", "n_real", "n_fake", "mu_real", "mu_fake", "test_accuracy", "created")


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


def scalar(value: Any) -> Any:
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
            attrs[key] = scalar(card[key])
    for key, value in sorted(meta.items()):
        if value is not None:
            attrs[f"meta_{key}"] = scalar(value)
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
