"""cutpaste_tf.density.kde (Gaussian kernel density) against a NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
from density_samples import features, l2n

from cutpaste_tf.density.kde import GaussianKDE


def _kde_reference(train, test, gamma, normalize=True):
    tr, te = train.astype(np.float64), test.astype(np.float64)
    if normalize:
        tr, te = l2n(tr), l2n(te)
    d2 = ((te[:, None, :] - tr[None, :, :]) ** 2).sum(-1)
    return -np.log(np.mean(np.exp(-gamma * d2), axis=1))


def test_kde_matches_numpy_reference_and_gamma_rule():
    train, test = features(60, 8, seed=15), features(12, 8, seed=16)
    kde = GaussianKDE(num_train=60, dim=8).fit(train)
    expected_gamma = 10.0 / (np.var(l2n(train)) * 8)
    np.testing.assert_allclose(kde.gamma.numpy(), expected_gamma, rtol=1e-6)
    np.testing.assert_allclose(
        kde.score(test).numpy(), _kde_reference(train, test, expected_gamma), rtol=1e-4, atol=1e-4
    )


def test_kde_fixed_gamma_without_normalisation():
    train, test = features(30, 5, seed=17), features(6, 5, seed=18)
    kde = GaussianKDE(num_train=30, dim=5, normalize=False, gamma=0.3).fit(train)
    assert kde.gamma.numpy() == pytest.approx(0.3)
    np.testing.assert_allclose(
        kde.score(test).numpy(), _kde_reference(train, test, 0.3, normalize=False), rtol=1e-4, atol=1e-4
    )


def test_kde_far_points_do_not_underflow():
    train = features(30, 5, seed=19)
    kde = GaussianKDE(30, 5, normalize=False, gamma=1.0).fit(train)
    score = kde.score(train[:1] + 100.0).numpy()
    assert np.isfinite(score[0]) and score[0] > 1000.0
