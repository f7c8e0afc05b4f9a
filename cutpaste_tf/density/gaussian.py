"""Density estimators that turn feature vectors into anomaly scores (higher = more anomalous).

Both estimators are fitted with NumPy / scikit-learn and keep their parameters in non-trainable
``tf.Variable``s, so scoring is pure TensorFlow (float32, XLA-compilable) and a SavedModel that
tracks the module scores by itself. ``save_density`` / ``load_density`` persist them as ``.npz``
files without pickle.

- ``GaussianDensity``: the Gaussian density estimator (GDE) of the paper's Eq. 2; the score is the
  Mahalanobis distance to the training mean under a Ledoit-Wolf shrunk covariance.
- ``GaussianKDE``: Gaussian kernel density; the score is the negative log mean kernel value.

With ``normalize=True`` (the default) features are L2-normalised before fitting and scoring, as in
the paper authors' companion code.
"""

from __future__ import annotations

import io
import math
import zipfile
from typing import Mapping, Optional

import numpy as np
import tensorflow as tf
from sklearn.covariance import LedoitWolf

from cutpaste_tf import __version__, files

_EPS = 1e-12  # tf.math.l2_normalize's epsilon on the squared norm.


def _check_features(features: np.ndarray, dim: int | None, what: str) -> np.ndarray:
    """Validate a [N, D] feature array (N >= 2, finite, D == dim) and return it as float64."""
    x = np.asarray(features)
    if x.ndim != 2:
        raise ValueError(f"{what}: features must be a 2-D array [num_samples, dim], got shape {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"{what}: need at least 2 samples to fit, got {x.shape[0]}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{what}: features have dim {x.shape[1]}, expected {dim}")
    x = x.astype(np.float64)
    bad_rows = int(np.sum(~np.all(np.isfinite(x), axis=1)))
    if bad_rows:
        raise ValueError(
            f"{what}: {bad_rows} of {x.shape[0]} feature rows contain NaN or Inf values"
        )
    return x


def _l2_normalize_np(x: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation in NumPy, matching ``tf.math.l2_normalize``."""
    sq = np.sum(x * x, axis=1, keepdims=True)
    return x / np.sqrt(np.maximum(sq, _EPS))


def _prepare_input(features: tf.Tensor, dim: int, normalize: bool) -> tf.Tensor:
    """Cast features to float32, check the static shape, and L2-normalise rows if asked."""
    x = tf.cast(tf.convert_to_tensor(features), tf.float32)
    if x.shape.rank is not None:
        if x.shape.rank != 2:
            raise ValueError(f"features must have shape [batch, {dim}], got {x.shape}")
        if x.shape[-1] is not None and x.shape[-1] != dim:
            raise ValueError(f"features have dim {x.shape[-1]}, expected {dim}")
    if normalize:
        x = tf.math.l2_normalize(x, axis=-1, epsilon=_EPS)
    return x


class GaussianDensity(tf.Module):
    """Gaussian density estimator (paper Eq. 2) scoring by Mahalanobis distance.

    Variables: ``mean`` [dim] and ``precision`` [dim, dim] (inverse Ledoit-Wolf covariance).
    ``serve`` is a ``tf.function`` with a fixed [None, dim] float32 signature for SavedModel export.
    """

    kind = "gde"

    def __init__(self, dim: int, normalize: bool = True, name: str = "gaussian_density"):
        super().__init__(name=name)
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        self.dim = int(dim)
        self.normalize = bool(normalize)
        with self.name_scope:
            self.mean = tf.Variable(tf.zeros([dim], tf.float32), trainable=False, name="mean")
            self.precision = tf.Variable(
                tf.zeros([dim, dim], tf.float32), trainable=False, name="precision"
            )
        self.serve = tf.function(
            self.score, input_signature=[tf.TensorSpec([None, dim], tf.float32, name="features")]
        )

    def fit(self, features: np.ndarray) -> "GaussianDensity":
        """Fit mean and Ledoit-Wolf precision on [N, dim] features of normal images; returns self."""
        x = _check_features(features, self.dim, "GaussianDensity.fit")
        if self.normalize:
            x = _l2_normalize_np(x)
        total_variance = float(np.sum(np.var(x, axis=0)))
        if not total_variance > 0:
            raise ValueError(
                f"GaussianDensity.fit: the features of all {x.shape[0]} training images are "
                "identical (zero variance), so no Gaussian can be fitted; the model has "
                "collapsed or every image is the same")
        # Ledoit-Wolf shrinks the covariance towards a multiple of the identity, so it stays
        # invertible with fewer images than dimensions and with constant feature columns.
        lw = LedoitWolf().fit(x)
        self.assign(lw.location_, lw.precision_)
        return self

    def assign(self, mean: np.ndarray, precision: np.ndarray) -> None:
        """Set the parameters (after checking shapes and finiteness)."""
        mean = np.asarray(mean, dtype=np.float64)
        precision = np.asarray(precision, dtype=np.float64)
        if mean.shape != (self.dim,) or precision.shape != (self.dim, self.dim):
            raise ValueError(
                f"expected mean [{self.dim}] and precision [{self.dim}, {self.dim}], "
                f"got {mean.shape} and {precision.shape}"
            )
        with np.errstate(over="ignore"):
            mean32, precision32 = mean.astype(np.float32), precision.astype(np.float32)
        if not (np.all(np.isfinite(mean32)) and np.all(np.isfinite(precision32))):
            raise ValueError("Gaussian parameters are not finite in float32 (degenerate "
                             "covariance: near-identical features?)")
        self.mean.assign(mean32)
        self.precision.assign(precision32)

    def score(self, features: tf.Tensor) -> tf.Tensor:
        """Mahalanobis distance sqrt(max((x-mu)^T P (x-mu), 0)) per row of [batch, dim] features."""
        x = _prepare_input(features, self.dim, self.normalize)
        d = x - self.mean
        m = tf.reduce_sum(tf.matmul(d, self.precision) * d, axis=-1)
        return tf.sqrt(tf.maximum(m, 0.0))

    def to_numpy_dict(self) -> dict[str, np.ndarray]:
        """Parameters as NumPy arrays (with "kind" and "normalize"), for ``save_density``."""
        return {
            "kind": np.array(self.kind),
            "normalize": np.array(self.normalize),
            "mean": self.mean.numpy(),
            "precision": self.precision.numpy(),
        }

    @classmethod
    def from_numpy_dict(cls, arrays: dict[str, np.ndarray]) -> "GaussianDensity":
        """Rebuild an estimator from ``to_numpy_dict`` output."""
        mean = np.asarray(arrays["mean"])
        if mean.ndim != 1:
            raise ValueError(f"mean must be 1-D, got shape {mean.shape}")
        density = cls(dim=mean.shape[0], normalize=bool(arrays["normalize"]))
        density.assign(mean, arrays["precision"])
        return density


class GaussianKDE(tf.Module):
    """Gaussian kernel density estimator; score = -log mean_i exp(-gamma ||x - x_i||^2).

    Variables: ``train_features`` [num_train, dim] and scalar ``gamma``. Scores all training points
    at once (memory grows with batch x num_train), fine for a few thousand training images.
    """

    kind = "kde"

    def __init__(
        self,
        num_train: int,
        dim: int,
        normalize: bool = True,
        gamma: float | None = None,
        name: str = "gaussian_kde",
    ):
        super().__init__(name=name)
        if num_train < 1 or dim < 1:
            raise ValueError(f"num_train and dim must be positive, got {num_train} and {dim}")
        if gamma is not None and not (math.isfinite(gamma) and gamma > 0):
            raise ValueError(f"gamma must be a positive finite number, got {gamma}")
        self.num_train = int(num_train)
        self.dim = int(dim)
        self.normalize = bool(normalize)
        self._fixed_gamma = gamma
        with self.name_scope:
            self.train_features = tf.Variable(
                tf.zeros([num_train, dim], tf.float32), trainable=False, name="train_features"
            )
            self.gamma = tf.Variable(
                1.0 if gamma is None else float(gamma), dtype=tf.float32, trainable=False, name="gamma"
            )
        self.serve = tf.function(
            self.score, input_signature=[tf.TensorSpec([None, dim], tf.float32, name="features")]
        )

    def fit(self, features: np.ndarray) -> "GaussianKDE":
        """Store the (normalised) training features and set gamma; returns self.

        Without an explicit gamma, uses the companion code's rule
        gamma = 10 / (variance of all training feature entries * dim).
        """
        x = _check_features(features, self.dim, "GaussianKDE.fit")
        if x.shape[0] != self.num_train:
            raise ValueError(
                f"GaussianKDE.fit: got {x.shape[0]} samples, this estimator holds {self.num_train}"
            )
        if self.normalize:
            x = _l2_normalize_np(x)
        if self._fixed_gamma is None:
            var = float(np.var(x))
            if not var > 0:
                raise ValueError(
                    "GaussianKDE.fit: training features have zero variance; pass gamma explicitly"
                )
            gamma = 10.0 / (var * self.dim)
        else:
            gamma = self._fixed_gamma
        self.assign(x, gamma)
        return self

    def assign(self, train_features: np.ndarray, gamma: float) -> None:
        """Set the parameters (after checking shapes and finiteness)."""
        x = np.asarray(train_features, dtype=np.float64)
        if x.shape != (self.num_train, self.dim):
            raise ValueError(
                f"expected train_features [{self.num_train}, {self.dim}], got {x.shape}"
            )
        gamma = float(gamma)
        if not np.all(np.isfinite(x)) or not (math.isfinite(gamma) and gamma > 0):
            raise ValueError("KDE parameters are not finite (or gamma <= 0)")
        self.train_features.assign(x.astype(np.float32))
        self.gamma.assign(gamma)

    def score(self, features: tf.Tensor) -> tf.Tensor:
        """Negative log mean Gaussian kernel value per row of [batch, dim] features."""
        x = _prepare_input(features, self.dim, self.normalize)
        t = self.train_features
        sq = (
            tf.reduce_sum(x * x, axis=-1, keepdims=True)
            + tf.reduce_sum(t * t, axis=-1)[tf.newaxis, :]
            - 2.0 * tf.matmul(x, t, transpose_b=True)
        )
        sq = tf.maximum(sq, 0.0)
        log_n = tf.math.log(tf.cast(tf.shape(t)[0], tf.float32))
        return -tf.reduce_logsumexp(-self.gamma * sq, axis=-1) + log_n

    def to_numpy_dict(self) -> dict[str, np.ndarray]:
        """Parameters as NumPy arrays (with "kind" and "normalize"), for ``save_density``."""
        return {
            "kind": np.array(self.kind),
            "normalize": np.array(self.normalize),
            "train_features": self.train_features.numpy(),
            "gamma": np.array(self.gamma.numpy()),
        }

    @classmethod
    def from_numpy_dict(cls, arrays: dict[str, np.ndarray]) -> "GaussianKDE":
        """Rebuild an estimator from ``to_numpy_dict`` output."""
        train = np.asarray(arrays["train_features"])
        if train.ndim != 2:
            raise ValueError(f"train_features must be 2-D, got shape {train.shape}")
        gamma = float(arrays["gamma"])
        density = cls(
            num_train=train.shape[0], dim=train.shape[1],
            normalize=bool(arrays["normalize"]), gamma=gamma,
        )
        density.assign(train, gamma)
        return density


Density = GaussianDensity | GaussianKDE

DENSITIES: dict[str, type[GaussianDensity] | type[GaussianKDE]] = {
    "gde": GaussianDensity,
    "kde": GaussianKDE,
}


def fit_density(kind: str, features: np.ndarray, normalize: bool = True) -> Density:
    """Build and fit the density estimator named ``kind`` ("gde" or "kde") on [N, D] features."""
    if kind not in DENSITIES:
        raise ValueError(f"unknown density kind {kind!r}; choices: {', '.join(sorted(DENSITIES))}")
    x = np.asarray(features)
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-D array [num_samples, dim], got shape {x.shape}")
    if kind == "gde":
        return GaussianDensity(dim=x.shape[1], normalize=normalize).fit(x)
    return GaussianKDE(num_train=x.shape[0], dim=x.shape[1], normalize=normalize).fit(x)


VERSION_ENTRY = "cutpaste_tf_version"
_META_PREFIX = "meta_"


def save_density(density: Density, path: str,
                 metadata: Optional[Mapping[str, str]] = None) -> None:
    """Write the estimator to an ``.npz`` file atomically (temp file, then rename); no pickle.

    The file also records the package version and any string ``metadata`` (the runner stores
    the backbone and the feature the density models), which :func:`load_density` can check.
    """
    arrays = density.to_numpy_dict()
    arrays[VERSION_ENTRY] = np.array(__version__)
    for key, value in (metadata or {}).items():
        arrays[_META_PREFIX + key] = np.array(str(value))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    files.write_bytes(path, buf.getvalue())


def load_density(path: str, expect: Optional[Mapping[str, str]] = None) -> Density:
    """Load an estimator written by ``save_density``; raises naming ``path`` if it is unusable.

    Never unpickles: object arrays in the file are refused. The file must come from this
    package's release series (major.minor), and each ``expect`` entry (for example
    ``{"backbone": "resnet18"}``) must match the metadata it was saved with.
    """
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"density file {path} does not exist")
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array, not an .npz archive")
        with loaded:
            arrays = {k: loaded[k] for k in loaded.files}
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise ValueError(f"density file {path} holds pickled (object) data, which is never "
                             "loaded: it was not written by save_density") from None
        raise ValueError(f"density file {path} is corrupt or not an .npz file: {e}") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise ValueError(f"density file {path} is corrupt or not an .npz file: {e}") from None
    if "kind" not in arrays:
        raise ValueError(f"density file {path} has no 'kind' entry")
    kind = str(arrays["kind"])
    if kind not in DENSITIES:
        raise ValueError(
            f"density file {path} has unknown kind {kind!r}; choices: {', '.join(sorted(DENSITIES))}"
        )
    written = str(arrays.pop(VERSION_ENTRY)) if VERSION_ENTRY in arrays else None
    if written is None or written.split(".")[:2] != __version__.split(".")[:2]:
        by = written or "of an unknown (older) version"
        raise ValueError(f"density file {path} was written by cutpaste_tf {by}, this is "
                         f"{__version__}; fit the density again")
    meta = {k[len(_META_PREFIX):]: str(arrays.pop(k)) for k in list(arrays)
            if k.startswith(_META_PREFIX)}
    for key, value in (expect or {}).items():
        if meta.get(key) != str(value):
            raise ValueError(f"density file {path} was fitted with {key} {meta.get(key)!r}, "
                             f"expected {str(value)!r}")
    try:
        return DENSITIES[kind].from_numpy_dict(arrays)
    except (KeyError, ValueError, TypeError) as e:
        raise ValueError(f"density file {path} has invalid {kind} parameters: {e}") from None
