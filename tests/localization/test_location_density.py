"""Tests for cutpaste_tf.localization.density: per-location and shared GDE over score maps."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.covariance import LedoitWolf

from cutpaste_tf.localization import density as dd


@pytest.mark.parametrize("n,d", [(12, 20), (40, 6)])  # Woodbury path (n < d) and direct path
def test_batched_ledoit_wolf_matches_sklearn_per_location(n, d):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, n, d)) * rng.uniform(0.5, 2.0, size=(3, 1, d))
    mean, precision = dd.ledoit_wolf_batched(x)
    assert mean.shape == (3, d) and precision.shape == (3, d, d)
    for loc in range(3):
        lw = LedoitWolf().fit(x[loc])
        np.testing.assert_allclose(mean[loc], lw.location_, rtol=1e-10)
        np.testing.assert_allclose(precision[loc], lw.precision_, rtol=1e-6, atol=1e-8)


def test_ridge_keeps_a_constant_location_invertible():
    x = np.zeros((2, 5, 4))
    x[1] = np.random.default_rng(1).normal(size=(5, 4))
    gde = dd.LocationGaussian(2, 4, normalize=False).fit(np.swapaxes(x, 0, 1), ridge=1e-3)
    assert np.all(np.isfinite(gde.precision.numpy()))


def _features(n=16, rows=3, cols=4, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    # Each location has its own mean, so per-location and shared densities differ.
    loc_means = rng.normal(size=(1, rows, cols, dim)) * 3.0
    return (loc_means + rng.normal(size=(n, rows, cols, dim))).astype(np.float32)


@pytest.mark.parametrize("per_location", [True, False])
def test_shapes_of_per_location_and_shared_densities(per_location):
    train = _features()
    density = dd.fit_dense_density(train, per_location, normalize=False)
    assert density.grid == (3, 4)
    if per_location:
        assert density.gde.mean.shape == (12, 8) and density.gde.precision.shape == (12, 8, 8)
    else:
        assert density.gde.mean.shape == (8,) and density.gde.precision.shape == (8, 8)
    scores = density.score_map(_features(n=5, seed=1)).numpy()
    assert scores.shape == (5, 3, 4) and np.all(np.isfinite(scores)) and np.all(scores >= 0)


def test_per_location_scores_equal_one_gaussian_per_location():
    train, test = _features(), _features(n=3, seed=2)
    density = dd.fit_dense_density(train, True, normalize=True)
    scores = density.score_map(test).numpy()
    unit = lambda a: a / np.linalg.norm(a, axis=-1, keepdims=True)
    for i, j in [(0, 0), (2, 3), (1, 2)]:
        lw = LedoitWolf().fit(unit(train[:, i, j].astype(np.float64)))
        diff = unit(test[:, i, j].astype(np.float64)) - lw.location_
        ref = np.sqrt(np.einsum("bd,de,be->b", diff, lw.precision_, diff))
        np.testing.assert_allclose(scores[:, i, j], ref, rtol=2e-3)


def test_a_feature_moved_to_another_location_is_anomalous_only_per_location():
    train = _features(n=40)
    test = train[:1].copy()
    test[0, 0, 0] = train[0, 2, 3]                  # normal content, wrong place
    per_loc = dd.fit_dense_density(train, True, normalize=False).score_map(test).numpy()
    shared = dd.fit_dense_density(train, False, normalize=False).score_map(test).numpy()
    assert per_loc[0, 0, 0] > 3 * np.median(per_loc)
    assert shared[0, 0, 0] < 2 * np.median(shared)


def test_save_load_round_trip(tmp_path):
    train, test = _features(), _features(n=2, seed=3)
    for per_location in (True, False):
        density = dd.fit_dense_density(train, per_location)
        path = str(tmp_path / f"d{per_location}.npz")
        dd.save(density, path)
        again = dd.load(path)
        assert again.per_location == per_location and again.grid == density.grid
        np.testing.assert_array_equal(again.score_map(test).numpy(),
                                      density.score_map(test).numpy())


def test_fit_checks_shapes():
    density = dd.DenseDensity((3, 4), 8, per_location=True)
    with pytest.raises(ValueError, match="expected features"):
        density.fit(np.zeros((5, 4, 3, 8)))


@pytest.mark.parametrize("choice,aligned,expected", [(None, True, True), (None, False, False),
                                                     (False, True, False), (True, False, True)])
def test_resolve_per_location(choice, aligned, expected):
    assert dd.resolve_per_location(choice, aligned) is expected
