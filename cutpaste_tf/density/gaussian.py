"""The Gaussian density estimator (GDE) of the paper's Eq. 2: the anomaly score of a feature
vector is its Mahalanobis distance to the mean of the training images' features, under a
Ledoit-Wolf shrunk covariance (higher = more anomalous).

Fitted with NumPy / scikit-learn; the parameters live in non-trainable ``tf.Variable``s, so
scoring is pure TensorFlow (float32, XLA-compilable) and a SavedModel that tracks the module
scores by itself. With ``normalize=True`` (the default) features are L2-normalised before
fitting and scoring, as in the paper authors' companion code. Fitting, saving and loading by
kind: :mod:`cutpaste_tf.density`; the kernel density alternative: :mod:`cutpaste_tf.density.kde`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from sklearn.covariance import LedoitWolf

from cutpaste_tf.density import features as features_lib


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
        x = features_lib.check_features(features, self.dim, "GaussianDensity.fit")
        if self.normalize:
            x = features_lib.l2_normalize_np(x)
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
        x = features_lib.prepare_input(features, self.dim, self.normalize)
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
