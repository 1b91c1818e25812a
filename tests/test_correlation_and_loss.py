"""Correlation, the contrastive loss, the decision rule, the metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.method.correlation import rho, rho_matrix
from engine.method.detect import decide, signed_score
from engine.method.losses import contrastive_correlation_loss
from engine.method.metrics import average_precision, detection_metrics, roc_auc


def test_rho_is_pearson_over_all_pixels():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(3, 16, 16, generator=g)
    r = torch.randn(5, 3, 16, 16, generator=g)
    expected = [np.corrcoef(r[i].flatten().numpy(), f.flatten().numpy())[0, 1] for i in range(5)]
    np.testing.assert_allclose(rho(r, f).numpy(), expected, atol=1e-5)


def test_rho_is_invariant_to_scale_and_offset_and_flips_with_sign():
    f = torch.randn(3, 8, 8)
    batch = torch.stack([f, 7 * f + 3, -f])
    np.testing.assert_allclose(rho(batch, f).numpy(), [1, 1, -1], atol=1e-5)


def test_rho_matrix_equals_one_by_one():
    r, fs = torch.randn(6, 3, 16, 16), torch.randn(4, 3, 16, 16)
    m = rho_matrix(r, fs)
    for j in range(4):
        np.testing.assert_allclose(m[:, j].numpy(), rho(r, fs[j]).numpy(), atol=1e-6)


def test_shift_max_recovers_a_shifted_periodic_fingerprint():
    base = torch.randn(3, 8, 8)
    f = base.repeat(1, 4, 4)  # period-8 pattern, 32x32
    shifted = torch.roll(f, shifts=(1, 3), dims=(1, 2)).unsqueeze(0)
    noise = 0.5 * torch.randn(1, 3, 32, 32)
    plain = rho_matrix(shifted + noise, f.unsqueeze(0), mode="plain").item()
    robust = rho_matrix(shifted + noise, f.unsqueeze(0), mode="shift-max").item()
    aligned = rho_matrix(f.unsqueeze(0) + noise, f.unsqueeze(0), mode="plain").item()
    assert abs(plain) < 0.4 and robust == pytest.approx(aligned, abs=0.05)


def test_hinge_loss_is_linear_zero_past_the_margin_and_one_for_collapsed_pairs():
    m = 0.01
    diff, same = torch.tensor([0.0]), torch.tensor([1.0])
    assert contrastive_correlation_loss(torch.tensor([0.0]), torch.tensor([0.02]), diff, m).item() == 0.0
    assert contrastive_correlation_loss(torch.tensor([0.3]), torch.tensor([0.3]), diff, m).item() == pytest.approx(1.0)
    assert contrastive_correlation_loss(torch.tensor([0.3]), torch.tensor([0.304]), diff, m).item() == pytest.approx(
        0.6, rel=1e-4
    )
    assert contrastive_correlation_loss(torch.tensor([0.1]), torch.tensor([0.1]), same, m).item() == 0.0
    assert contrastive_correlation_loss(torch.tensor([0.1]), torch.tensor([0.13]), same, m).item() == pytest.approx(
        0.03 / m, rel=1e-4
    )


def test_squared_loss_is_the_earlier_variant():
    m = 0.01
    diff, same = torch.tensor([0.0]), torch.tensor([1.0])
    assert contrastive_correlation_loss(
        torch.tensor([0.3]), torch.tensor([0.3]), diff, m, "squared"
    ).item() == pytest.approx(m)
    assert contrastive_correlation_loss(
        torch.tensor([0.1]), torch.tensor([0.13]), same, m, "squared"
    ).item() == pytest.approx(0.03**2 / m, rel=1e-4)
    with pytest.raises(ValueError, match="unknown loss"):
        contrastive_correlation_loss(torch.tensor([0.1]), torch.tensor([0.1]), same, m, "cubic")


def test_loss_gradient_pushes_different_classes_apart_in_either_sign():
    for sign in (1.0, -1.0):
        a = torch.tensor([0.001 * sign], requires_grad=True)
        b = torch.tensor([0.0])
        contrastive_correlation_loss(a, b, torch.tensor([0.0]), 0.01).backward()
        assert a.grad.item() * sign < 0  # gradient descent moves a away from b


def test_decision_uses_learned_means_whatever_their_sign():
    rhos = np.array([-0.05, -0.01, 0.0, 0.02])
    np.testing.assert_array_equal(decide(rhos, mu_real=0.0, mu_fake=-0.04), [True, False, False, False])
    np.testing.assert_array_equal(decide(rhos, mu_real=0.0, mu_fake=0.03), [False, False, False, True])
    np.testing.assert_allclose(signed_score(np.array([0.0, 0.015, 0.03]), 0.0, 0.03), [-1, 0, 1])
    np.testing.assert_allclose(signed_score(np.array([0.0, -0.04]), 0.0, -0.04), [-1, 1])


def test_auc_matches_pair_counting_with_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 40).astype(float)
    labels = rng.integers(0, 2, 40)
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairs = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert roc_auc(labels, scores) == pytest.approx(pairs)


def test_average_precision_perfect_and_worst():
    assert average_precision(np.array([1, 1, 0, 0]), np.array([4, 3, 2, 1])) == pytest.approx(1.0)
    assert average_precision(np.array([0, 0, 1]), np.array([3, 2, 1])) == pytest.approx(1 / 3)


def test_balanced_accuracy_is_mean_of_class_accuracies():
    labels = np.array([0, 0, 0, 0, 1, 1])
    preds = np.array([0, 0, 0, 1, 1, 0])
    m = detection_metrics(labels, preds, preds.astype(float))
    assert m["acc_real"] == 0.75 and m["acc_fake"] == 0.5 and m["accuracy"] == 0.625
