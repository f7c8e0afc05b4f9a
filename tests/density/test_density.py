"""cutpaste_tf.density.gaussian (the GDE) against NumPy / scikit-learn references, and the
package's fit_density / save_density / load_density for both estimators (the KDE itself:
test_kde.py)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
from density_samples import features, l2n
from sklearn.covariance import LedoitWolf

from cutpaste_tf import density as dens


def _gde_reference(train: np.ndarray, test: np.ndarray, normalize: bool) -> np.ndarray:
    """Mahalanobis distance with np.linalg.inv of scikit-learn's Ledoit-Wolf covariance."""
    tr, te = train.astype(np.float64), test.astype(np.float64)
    if normalize:
        tr, te = l2n(tr), l2n(te)
    lw = LedoitWolf().fit(tr)
    prec = np.linalg.inv(lw.covariance_)
    d = te - lw.location_
    return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", d, prec, d), 0.0))


@pytest.mark.parametrize("normalize", [True, False])
def test_gde_matches_numpy_reference(normalize):
    train, test = features(200, 16, seed=1), features(50, 16, seed=2)
    gde = dens.GaussianDensity(dim=16, normalize=normalize).fit(train)
    got = gde.score(tf.constant(test)).numpy()
    np.testing.assert_allclose(got, _gde_reference(train, test, normalize), rtol=1e-4)
    np.testing.assert_allclose(gde.mean.numpy(), LedoitWolf().fit(
        l2n(train) if normalize else train.astype(np.float64)).location_, rtol=1e-5, atol=1e-7)


def test_gde_normalisation_changes_scores():
    train, test = features(100, 8, seed=3), features(10, 8, seed=4)
    a = dens.GaussianDensity(8, normalize=True).fit(train).score(test).numpy()
    b = dens.GaussianDensity(8, normalize=False).fit(train).score(test).numpy()
    assert not np.allclose(a, b)


def test_gde_fewer_samples_than_dims():
    train = features(5, 64, seed=5)
    gde = dens.GaussianDensity(64).fit(train)
    assert np.all(np.isfinite(gde.precision.numpy()))
    scores = gde.score(features(7, 64, seed=6)).numpy()
    assert scores.shape == (7,) and np.all(np.isfinite(scores))
    np.testing.assert_allclose(scores, _gde_reference(train, features(7, 64, seed=6), True), rtol=1e-4)


@pytest.mark.parametrize("normalize", [True, False])
def test_gde_constant_feature_column(normalize):
    train = features(30, 12, seed=7)
    train[:, 3] = 0.5
    test = features(10, 12, seed=8)
    gde = dens.GaussianDensity(12, normalize=normalize).fit(train)
    scores = gde.score(test).numpy()
    assert np.all(np.isfinite(scores))
    np.testing.assert_allclose(scores, _gde_reference(train, test, normalize), rtol=1e-4)


def test_gde_ranks_far_point_above_training_like_points():
    train = features(300, 10, seed=9)
    gde = dens.GaussianDensity(10, normalize=False).fit(train)
    inliers = features(20, 10, seed=10)
    far = inliers[:1] + 25.0 * np.eye(10, dtype=np.float32)[:1]
    s_in = gde.score(inliers).numpy()
    s_far = gde.score(far).numpy()
    assert s_far[0] > s_in.max()


def test_gde_accepts_float16_and_float64_inputs():
    train, test = features(50, 6, seed=11), features(4, 6, seed=12)
    gde = dens.GaussianDensity(6).fit(train)
    ref = gde.score(test).numpy()
    for dtype in (tf.float16, tf.float64):
        got = gde.score(tf.cast(test, dtype))
        assert got.dtype == tf.float32
        np.testing.assert_allclose(got.numpy(), ref, rtol=2e-2 if dtype == tf.float16 else 1e-5)


@pytest.mark.parametrize("kind", ["gde", "kde"])
def test_score_under_xla_and_tf_function(kind):
    train, test = features(40, 8, seed=13), features(9, 8, seed=14)
    model = dens.fit_density(kind, train)
    eager = model.score(test).numpy()
    xla = tf.function(lambda x: model.score(x), jit_compile=True)(tf.constant(test)).numpy()
    graph = tf.function(lambda x: model.score(x))(tf.constant(test)).numpy()
    served = model.serve(tf.constant(test)).numpy()
    np.testing.assert_allclose(xla, eager, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(graph, eager, rtol=1e-6)
    np.testing.assert_allclose(served, eager, rtol=1e-6)


@pytest.mark.parametrize("kind", ["gde", "kde"])
def test_save_load_round_trip(tmp_path, kind):
    train, test = features(40, 8, seed=20), features(9, 8, seed=21)
    model = dens.fit_density(kind, train, normalize=False)
    path = str(tmp_path / f"{kind}.npz")
    dens.save_density(model, path)
    assert not os.path.exists(path + ".tmp")
    loaded = dens.load_density(path)
    assert type(loaded) is type(model) and loaded.normalize is False
    np.testing.assert_array_equal(loaded.score(test).numpy(), model.score(test).numpy())
    with np.load(path, allow_pickle=False) as npz:
        assert str(npz["kind"]) == kind and not bool(npz["normalize"])


def test_save_overwrites_existing_file(tmp_path):
    path = str(tmp_path / "d.npz")
    dens.save_density(dens.fit_density("gde", features(20, 4, seed=22)), path)
    second = dens.fit_density("gde", features(20, 4, seed=23))
    dens.save_density(second, path)
    np.testing.assert_array_equal(dens.load_density(path).mean.numpy(), second.mean.numpy())


def test_savedmodel_scores_by_itself(tmp_path):
    train, test = features(40, 8, seed=24), features(5, 8, seed=25)
    gde = dens.fit_density("gde", train)
    tf.saved_model.save(gde, str(tmp_path / "sm"))
    restored = tf.saved_model.load(str(tmp_path / "sm"))
    np.testing.assert_allclose(restored.serve(tf.constant(test)).numpy(), gde.score(test).numpy(), rtol=1e-6)


def test_load_truncated_file_names_file(tmp_path):
    path = str(tmp_path / "broken.npz")
    dens.save_density(dens.fit_density("gde", features(20, 4)), path)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(ValueError, match="broken.npz"):
        dens.load_density(path)


def test_load_missing_and_unknown_kind(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        dens.load_density(str(tmp_path / "nope.npz"))
    path = str(tmp_path / "odd.npz")
    np.savez(path, kind=np.array("gmm"), normalize=np.array(True))
    with pytest.raises(ValueError, match=r"odd\.npz.*unknown kind 'gmm'"):
        dens.load_density(path)


def test_nan_features_rejected_with_row_count():
    x = features(10, 4)
    x[2, 1] = np.nan
    x[5, 0] = np.inf
    with pytest.raises(ValueError, match="2 of 10 feature rows contain NaN or Inf"):
        dens.GaussianDensity(4).fit(x)
    with pytest.raises(ValueError, match="NaN or Inf"):
        dens.fit_density("kde", x)


def test_input_validation():
    with pytest.raises(ValueError, match="at least 2 samples"):
        dens.GaussianDensity(4).fit(features(1, 4))
    with pytest.raises(ValueError, match="dim 5, expected 4"):
        dens.GaussianDensity(4).fit(features(10, 5))
    gde = dens.GaussianDensity(4).fit(features(10, 4))
    with pytest.raises(ValueError, match="dim 3, expected 4"):
        gde.score(features(2, 3))
    with pytest.raises(ValueError, match="choices: gde, kde"):
        dens.fit_density("gmm", features(10, 4))
    with pytest.raises(ValueError, match="holds 10"):
        dens.GaussianKDE(10, 4).fit(features(12, 4))


def test_gde_five_images_of_512_dims_stays_invertible():
    # Five normal images, 512-d features: the sample covariance has rank 4; Ledoit-Wolf
    # shrinkage towards a scaled identity keeps it positive definite.
    train = features(5, 512, seed=30)
    gde = dens.GaussianDensity(512).fit(train)
    precision = gde.precision.numpy().astype(np.float64)
    assert np.all(np.isfinite(precision))
    np.testing.assert_allclose(precision, precision.T, rtol=1e-4, atol=1e-4)
    assert np.linalg.eigvalsh(precision).min() > 0
    test = features(7, 512, seed=31)
    scores = gde.score(test).numpy()
    assert scores.shape == (7,) and np.all(np.isfinite(scores))
    np.testing.assert_allclose(scores, _gde_reference(train, test, True), rtol=1e-3)
    assert gde.score(train).numpy().max() < scores.min()  # training points are the most normal


def test_gde_mostly_constant_feature_columns():
    # Dead ReLU units give pooled features that are 0 for every image.
    train = features(20, 64, seed=32)
    train[:, 10:] = 0.0
    gde = dens.GaussianDensity(64).fit(train)
    assert np.all(np.isfinite(gde.score(features(5, 64, seed=33)).numpy()))


@pytest.mark.parametrize("value", [0.0, 0.3])
def test_gde_identical_features_are_refused(value):
    with pytest.raises(ValueError, match=r"features of all 5 training images are identical"):
        dens.GaussianDensity(8).fit(np.full((5, 8), value, np.float32))


def test_gde_parameters_that_overflow_float32_are_refused():
    gde = dens.GaussianDensity(2)
    with pytest.raises(ValueError, match="not finite in float32"):
        gde.assign(np.zeros(2), np.eye(2) * 1e300)
