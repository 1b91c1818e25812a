"""Lineage inference on hand-made matrices (known answer) and on the tiny zoo; export round-trips."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
from PIL import Image

from engine.errors import ConfigError
from engine.lineage.cross import CrossResult
from engine.lineage.export import from_node_link, to_graphml, to_html, to_node_link, to_png
from engine.lineage.figure import lineage_figure
from engine.lineage.infer import LineageParams, affinity_matrix, families, infer_lineage
from engine.lineage.scoring import adjusted_rand_index, score_lineage

NAMES = ["a", "a1", "a2", "b", "b1", "c"]
# a -> a1 -> a2 (a2 closest to a1), b -> b1, c alone; b's detector is broad: it flags c's images (asymmetric)
C = np.array(
    [
        [0.95, 0.90, 0.75, 0.50, 0.52, 0.50],
        [0.88, 0.96, 0.86, 0.51, 0.50, 0.50],
        [0.74, 0.85, 0.94, 0.50, 0.50, 0.53],
        [0.50, 0.50, 0.52, 0.93, 0.80, 0.90],
        [0.52, 0.50, 0.50, 0.82, 0.95, 0.50],
        [0.50, 0.51, 0.50, 0.55, 0.50, 0.92],
    ]
)
TRUTH = {
    "models": {
        "a": {"family": "A", "parent": None},
        "a1": {"family": "A", "parent": "a"},
        "a2": {"family": "A", "parent": "a1"},
        "b": {"family": "B", "parent": None},
        "b1": {"family": "B", "parent": "b"},
        "c": {"family": "C", "parent": None},
    }
}


def _cross(acc=C, names=NAMES) -> CrossResult:
    m = len(names)
    return CrossResult(list(names), np.array(acc), np.array(acc), np.zeros((m, m)), np.zeros((m, m)), [20] * m)


def test_families_and_tree_from_a_hand_made_matrix():
    g = infer_lineage(_cross())
    assert families(g) == [["a", "a1", "a2"], ["b", "b1"], ["c"]]
    pairs = {frozenset(e) for e in g.edges}
    assert pairs == {frozenset(("a", "a1")), frozenset(("a1", "a2")), frozenset(("b", "b1"))}
    # the asymmetric b/c pair (0.90 one way, 0.55 the other) is not a relation
    assert not g.has_edge("b", "c") and not g.has_edge("c", "b")
    e = g.edges["a", "a1"]
    assert e["c_ij"] == 0.90 and e["c_ji"] == 0.88 and e["affinity"] == 0.88
    assert e["confidence"] == pytest.approx(0.76)
    scores = score_lineage(g, TRUTH)
    assert scores["ari"] == 1.0 and scores["parent_child_recall"] == 1.0


def test_no_direction_without_metadata():
    g = infer_lineage(_cross())
    assert g.number_of_edges() == 3
    assert all(d["directed"] is False for _, _, d in g.edges(data=True))
    assert "no known direction" in g.graph["note"]


def test_direction_only_from_metadata():
    meta = {"a2": {"base_model": "a1"}, "a": {"release_date": "2023-01-01"}, "a1": {"release_date": "2023-06-01"}}
    g = infer_lineage(_cross(), meta)
    assert g.edges["a1", "a2"]["directed"] and "declares base_model" in g.edges["a1", "a2"]["orientation"]
    assert g.edges["a", "a1"]["directed"] and g.has_edge("a", "a1") and not g.has_edge("a1", "a")
    # the b family has no metadata: still undirected
    ((u, v, d),) = [(u, v, d) for u, v, d in g.edges(data=True) if {u, v} == {"b", "b1"}]
    assert d["directed"] is False
    # a release date orienting a1 -> a (newer first) is followed, and c_ij stays detector(source) on target
    g2 = infer_lineage(_cross(), {"a": {"release_date": "2024-01-01"}, "a1": {"release_date": "2023-01-01"}})
    assert g2.has_edge("a1", "a") and g2.edges["a1", "a"]["c_ij"] == 0.88
    assert score_lineage(g2, TRUTH)["directed_correct"] == 0
    assert score_lineage(g2, TRUTH)["parent_child_recall"] == pytest.approx(2 / 3, abs=1e-3)


def test_thresholds_are_settable():
    strict = infer_lineage(_cross(), params=LineageParams(family_threshold=0.87, edge_threshold=0.87))
    assert families(strict) == [["a", "a1"], ["a2"], ["b"], ["b1"], ["c"]]
    loose = infer_lineage(_cross(), params=LineageParams(family_threshold=0.6, edge_threshold=0.6))
    assert ["a", "a1", "a2"] in families(loose)
    geo = infer_lineage(_cross(), params=LineageParams(affinity="geomean"))
    assert geo.edges["b", "b1"]["affinity"] == pytest.approx(np.sqrt(0.80 * 0.82))
    with pytest.raises(ConfigError):
        LineageParams(affinity="max")
    with pytest.raises(ConfigError):
        LineageParams(family_threshold=1.5)


def test_average_linkage_does_not_chain_families():
    # x-y and y-z each fairly related, x-z not at all: single linkage would chain x, y, z
    acc = np.array([[0.95, 0.74, 0.50], [0.74, 0.95, 0.74], [0.50, 0.74, 0.95]])
    g = infer_lineage(_cross(acc, ["x", "y", "z"]), params=LineageParams(family_threshold=0.7, edge_threshold=0.65))
    assert len(families(g)) == 2


def test_affinity_and_ari_values():
    a = affinity_matrix(np.array([[0.9, 0.8], [0.6, 0.95]]))
    assert a[0, 1] == a[1, 0] == 0.6 and a[0, 0] == 1.0
    assert adjusted_rand_index([0, 0, 1, 1], [5, 5, 7, 7]) == 1.0
    # hand-computed: index = C(2,2) = 1; rows C(3,2)=3; cols C(2,2)+C(2,2)=2; expected = 3*2/C(4,2)
    assert adjusted_rand_index([0, 0, 0, 1], [0, 0, 1, 1]) == pytest.approx((1 - 3 * 2 / 6) / ((3 + 2) / 2 - 3 * 2 / 6))
    assert adjusted_rand_index([0, 1, 2, 3], [0, 0, 0, 0]) == 0.0


def _graph():
    cards = {n: {"method": "marra18", "crop": 32, "test_accuracy": None, "mu_real": 0.01} for n in NAMES}
    meta = {"a1": {"base_model": "a", "notes": {"k": [1, 2]}}}
    return infer_lineage(_cross(), meta, cards=cards)


def test_graphml_roundtrip(tmp_path):
    g = _graph()
    path = to_graphml(g, tmp_path / "l.graphml")
    back = nx.read_graphml(path)
    assert isinstance(back, nx.DiGraph)
    assert set(back.nodes) == set(g.nodes) and set(back.edges) == set(g.edges)
    for n, d in g.nodes(data=True):
        expected = {
            k: (json.dumps(v, sort_keys=True) if isinstance(v, dict) else v) for k, v in d.items() if v is not None
        }
        assert back.nodes[n] == expected
    for u, v, d in g.edges(data=True):
        assert back.edges[u, v] == d
    assert "test_accuracy" not in back.nodes["a"]  # None is left out, not written as text


def test_node_link_roundtrip():
    g = _graph()
    data = json.loads(json.dumps(to_node_link(g)))
    back = from_node_link(data)
    assert set(back.edges) == set(g.edges)
    assert back.edges["a", "a1"] == g.edges["a", "a1"]
    assert nx.node_link_graph(data, edges="links").number_of_edges() == g.number_of_edges()


def test_html_png_and_figure(tmp_path):
    g = _graph()
    page = to_html(g, title="Test <lineage>")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "Test &lt;lineage&gt;" in page and "plotly" in page.lower()
    assert len(page) > 1_000_000  # plotly.js is embedded: the page works offline
    png = to_png(g, tmp_path / "l.png")
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size == (1200, 720)
        rgb = np.asarray(im.convert("RGB"))
        assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 10  # something was drawn
    # issue 13: a legend below the graph, one colour swatch per family (the old PNG had none)
    from engine.lineage.layout import palette

    legend = rgb[-130:].reshape(-1, 3)
    for f in range(len(families(g))):
        colour = np.array([int(palette(f)[i : i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(legend.astype(int) - colour).sum(axis=1) == 0).sum() > 50, f
    from PIL import ImageFont

    from engine.lineage.export import PNG_FONT_SIZE

    font = ImageFont.load_default(size=PNG_FONT_SIZE)
    assert (
        font.getlength("arrows come") - font.getlength("arrowscome") >= 3
    )  # a visible space: words do not run together
    fig = lineage_figure(g)
    texts = [t for tr in fig.data if tr.mode == "markers+text" for t in tr.text]
    assert sorted(texts) == sorted(NAMES)


def test_lineage_recovers_the_tiny_zoo_families():
    from zoo_fixtures import tiny_zoo

    from engine.lineage.cross import cross_detect
    from engine.lineage.scoring import truth_from_metadata

    store, manifest = tiny_zoo()
    fps = [store.load(n) for n in manifest["models"]]
    cross = cross_detect(fps, store)
    meta = {fp.name: fp.metadata for fp in fps}
    g = infer_lineage(cross, meta, cards={fp.name: fp.summary() for fp in fps})
    scores = score_lineage(g, truth_from_metadata(meta))
    assert scores == score_lineage(g, manifest["truth"])
    assert scores["ari"] >= 0.8
    assert ["zoo-shuffle"] in families(g)  # the other architecture joins no family
    family_of = {n: g.nodes[n]["family"] for n in g.nodes}
    assert family_of["zoo-seed2"] != family_of["zoo-base"]
    assert scores["parent_child_recall"] >= 0.4
    assert g.nodes["zoo-base"]["test_accuracy"] == fps[0].test_metrics["accuracy"]
    full = infer_lineage(cross, meta, cards={fp.name: fp.card() for fp in fps})  # full cards work too
    assert full.nodes["zoo-base"]["test_accuracy"] == fps[0].test_metrics["accuracy"]
    assert full.nodes["zoo-base"]["meta_family"] == "A"
