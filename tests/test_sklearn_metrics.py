"""The scikit-learn metrics give the numbers the hand-written ones gave (kept here as the reference)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.lineage.scoring import adjusted_rand_index
from engine.method.metrics import average_precision, roc_auc


def old_roc_auc(labels, scores) -> float:
    """The formula engine.metrics used before scikit-learn: Mann-Whitney U with tied ranks averaged."""
    labels, scores = np.asarray(labels).astype(bool), np.asarray(scores, dtype=np.float64)
    pos, neg = scores[labels], scores[~labels]
    allscores = np.concatenate([pos, neg])
    order = np.argsort(allscores, kind="mergesort")
    ranks, ordered = np.empty(len(order)), allscores[order]
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0) / (len(pos) * len(neg)))


def old_average_precision(labels, scores) -> float:
    """Mean precision at each positive, in descending score order (ties in input order)."""
    labels = np.asarray(labels).astype(bool)
    hits = labels[np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


def old_ari(a: list, b: list) -> float:
    """Pair-counting ARI from the contingency table, as engine.lineage computed it."""

    def pairs(k: float) -> float:
        return k * (k - 1) / 2.0

    table: dict = {}
    for x, y in zip(a, b):
        table[(x, y)] = table.get((x, y), 0) + 1
    rows: dict = {}
    cols: dict = {}
    for (x, y), k in table.items():
        rows[x], cols[y] = rows.get(x, 0) + k, cols.get(y, 0) + k
    index = sum(pairs(k) for k in table.values())
    sr, sc = sum(pairs(k) for k in rows.values()), sum(pairs(k) for k in cols.values())
    expected, maximum = sr * sc / pairs(len(a)), (sr + sc) / 2.0
    return 1.0 if maximum == expected else float((index - expected) / (maximum - expected))


@pytest.mark.parametrize("seed", range(6))
def test_auc_and_ap_match_the_old_formulas_on_random_scores(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 40)
    labels[:2] = [0, 1]
    scores = rng.normal(size=40) + labels
    assert roc_auc(labels, scores) == pytest.approx(old_roc_auc(labels, scores), abs=1e-12)
    assert average_precision(labels, scores) == pytest.approx(old_average_precision(labels, scores), abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_tied_scores(seed):
    """AUC: ties count half in both. AP: the old value depended on the order of tied items; the
    new one treats a tie as one threshold and lies between the old best and worst orders."""
    rng = np.random.default_rng(100 + seed)
    labels = rng.integers(0, 2, 30)
    labels[:2] = [0, 1]
    scores = rng.integers(0, 4, 30).astype(float)  # heavy ties
    assert roc_auc(labels, scores) == pytest.approx(old_roc_auc(labels, scores), abs=1e-12)
    positives_first, negatives_first = np.argsort(-labels, kind="stable"), np.argsort(labels, kind="stable")
    best = old_average_precision(labels[positives_first], scores[positives_first])
    worst = old_average_precision(labels[negatives_first], scores[negatives_first])
    assert worst - 1e-12 <= average_precision(labels, scores) <= best + 1e-12


@pytest.mark.parametrize("seed", range(8))
def test_ari_matches_the_old_formula(seed):
    rng = np.random.default_rng(seed)
    a = list(rng.integers(0, 1 + seed % 4, 12))
    b = list(rng.integers(0, 1 + (seed + 1) % 5, 12))
    assert adjusted_rand_index(a, b) == pytest.approx(old_ari(a, b), abs=1e-12)
    assert adjusted_rand_index(a, a) == pytest.approx(old_ari(a, a)) == pytest.approx(1.0)
