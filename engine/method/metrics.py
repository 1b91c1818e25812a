"""Detection metrics on plain arrays: balanced accuracy, per-class accuracy, ROC AUC, average precision."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Probability that a random generated image scores above a random real one (ties count half)."""
    labels = np.asarray(labels).astype(bool)
    if labels.all() or not labels.any():
        return float("nan")
    return float(roc_auc_score(labels, np.asarray(scores, dtype=np.float64)))


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall curve, step-wise (generated = positive); tied scores are one threshold."""
    labels = np.asarray(labels).astype(bool)
    if not labels.any():
        return float("nan")
    return float(average_precision_score(labels, np.asarray(scores, dtype=np.float64)))


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
