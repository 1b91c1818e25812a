"""Detection metrics on plain arrays: balanced accuracy, per-class accuracy, ROC AUC, average precision."""

from __future__ import annotations

import numpy as np


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Probability that a random generated image scores above a random real one (ties count half)."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    pos, neg = scores[labels], scores[~labels]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    allscores = np.concatenate([pos, neg])[order]
    # average ranks over ties
    i = 0
    while i < len(allscores):
        j = i
        while j + 1 < len(allscores) and allscores[j + 1] == allscores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    rank_pos = ranks[: len(pos)].sum()
    return float((rank_pos - len(pos) * (len(pos) + 1) / 2.0) / (len(pos) * len(neg)))


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall curve, step-wise (generated = positive)."""
    labels = np.asarray(labels).astype(bool)
    if labels.sum() == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    hits = labels[order]
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


def detection_metrics(labels: np.ndarray, predictions: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """labels/predictions: 1 = generated. Balanced accuracy is the mean of the two class accuracies."""
    labels = np.asarray(labels).astype(bool)
    predictions = np.asarray(predictions).astype(bool)
    acc_real = float((~predictions[~labels]).mean()) if (~labels).any() else float("nan")
    acc_fake = float(predictions[labels].mean()) if labels.any() else float("nan")
    return {
        "accuracy": float(np.nanmean([acc_real, acc_fake])),
        "acc_real": acc_real,
        "acc_fake": acc_fake,
        "auc": roc_auc(labels, scores),
        "ap": average_precision(labels, scores),
        "n_real": int((~labels).sum()),
        "n_fake": int(labels.sum()),
    }
