"""Gaussian kernel density estimation (KDE), the nonparametric alternative to the GDE that the
paper names (Sec. 2.3): the score is the negative log mean kernel value over the training
features (higher = more anomalous).

Like :class:`cutpaste_tf.density.gaussian.GaussianDensity`, fitted in NumPy and scored in pure
TensorFlow from non-trainable variables, with L2-normalised features by default.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from cutpaste_tf.density import features as features_lib


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
        x = features_lib.check_features(features, self.dim, "GaussianKDE.fit")
        if x.shape[0] != self.num_train:
            raise ValueError(
                f"GaussianKDE.fit: got {x.shape[0]} samples, this estimator holds {self.num_train}"
            )
        if self.normalize:
            x = features_lib.l2_normalize_np(x)
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
        x = features_lib.prepare_input(features, self.dim, self.normalize)
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
