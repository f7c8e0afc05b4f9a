"""Gaussian densities over dense patch features: one per grid location, or one shared.

Appendix A.5: aligned objects get one Gaussian density estimator per location of the score map
(the location carries the context: a missing component is normal elsewhere but not there);
textures and objects that sit anywhere (hazelnut, screw) get one GDE shared by all locations.

:class:`LocationGaussian` fits all locations at once: the Ledoit-Wolf shrinkage of each
location is computed batched (the same formula as ``sklearn.covariance.ledoit_wolf``), and the
precision of each shrunk covariance ``beta * I + U U^T`` by the Woodbury identity when there
are fewer training images than feature dimensions (``D^2 N`` instead of ``D^3`` per location).
Scoring is one batched Mahalanobis distance over ``[B, L, D]`` features. Memory: the precisions
are ``L * D * D`` float32, 177 MB for the CPU quickstart's 13 x 13 grid of 512-d features and
3.4 GB for the paper's 57 x 57 grid (in memory and in the exported SavedModel).
"""

from __future__ import annotations

import io

import numpy as np
import tensorflow as tf

from cutpaste_tf import files
from cutpaste_tf.density import gaussian as density_lib

_EPS = 1e-12


def ledoit_wolf_batched(x: np.ndarray, ridge: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Means ``[L, D]`` and Ledoit-Wolf precisions ``[L, D, D]`` of ``[L, N, D]`` samples.

    Per location the same as ``sklearn.covariance.LedoitWolf().fit(x[l])`` (``location_``,
    ``precision_``); ``ridge`` adds ``ridge * I`` to every covariance first (0 = sklearn).
    """
    x = np.asarray(x, np.float64)
    if x.ndim != 3 or x.shape[1] < 2:
        raise ValueError(f"need [locations, samples >= 2, dim] features, got shape {x.shape}")
    _, n, d = x.shape
    mean = x.mean(axis=1)
    xc = x - mean[:, None, :]
    sq_norms = np.einsum("lnd,lnd->ln", xc, xc)             # ||x_k||^2 per sample
    trace = sq_norms.sum(axis=1) / n                          # trace of the empirical covariance
    mu = trace / d
    gram = np.einsum("lnd,lmd->lnm", xc, xc)                  # X X^T, [L, N, N]
    delta_ = np.sum(gram ** 2, axis=(1, 2)) / n ** 2          # ||X^T X||_F^2 / n^2
    beta_ = np.sum(sq_norms ** 2, axis=1)                     # sum_k ||x_k||^4
    beta = (beta_ / n - delta_) / (d * n)
    delta = (delta_ - 2.0 * mu * trace + d * mu ** 2) / d
    beta = np.minimum(beta, delta)
    shrink = np.where(beta == 0, 0.0, beta / np.where(delta == 0, 1.0, delta))
    diag = shrink * mu + ridge                                 # cov = (1-s) X^T X / n + diag I
    if n < d and np.all(diag > 0):
        # Woodbury: (diag I + U U^T)^-1 = (I - U (diag I_n + U^T U)^-1 U^T) / diag,
        # with U = sqrt((1 - s) / n) X^T.
        scale = (1.0 - shrink) / n
        inner = diag[:, None, None] * np.eye(n) + scale[:, None, None] * gram
        u = np.sqrt(scale)[:, None, None] * np.swapaxes(xc, 1, 2)          # [L, D, N]
        solved = np.linalg.solve(inner, np.swapaxes(u, 1, 2))              # [L, N, D]
        precision = (np.eye(d) - u @ solved) / diag[:, None, None]
    else:
        cov = ((1.0 - shrink) / n)[:, None, None] * np.einsum("lnd,lne->lde", xc, xc)
        cov = cov + diag[:, None, None] * np.eye(d)
        precision = np.linalg.inv(cov)
    return mean, 0.5 * (precision + np.swapaxes(precision, 1, 2))


class LocationGaussian(tf.Module):
    """One Gaussian per grid location; ``score([B, L, D]) -> [B, L]`` Mahalanobis distances."""

    kind = "gde_per_location"

    def __init__(self, num_locations: int, dim: int, normalize: bool = True,
                 name: str = "location_gaussian"):
        super().__init__(name=name)
        self.num_locations, self.dim, self.normalize = int(num_locations), int(dim), bool(normalize)
        with self.name_scope:
            self.mean = tf.Variable(tf.zeros([num_locations, dim]), trainable=False, name="mean")
            self.precision = tf.Variable(tf.zeros([num_locations, dim, dim]), trainable=False,
                                         name="precision")

    def fit(self, features: np.ndarray, ridge: float = 1e-6,
            locations_per_step: int = 64) -> LocationGaussian:
        """Fits on ``[N, L, D]`` features of normal training images; returns self.

        ``ridge`` times the average per-dimension variance is added to every covariance, so a
        location without variation (a flat background) stays invertible.
        """
        x = np.asarray(features, np.float64)
        if x.ndim != 3 or x.shape[1:] != (self.num_locations, self.dim):
            raise ValueError(f"expected features [N, {self.num_locations}, {self.dim}], "
                             f"got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("LocationGaussian.fit: features contain NaN or Inf")
        if self.normalize:
            x = x / np.sqrt(np.maximum(np.sum(x * x, axis=-1, keepdims=True), _EPS))
        x = np.swapaxes(x, 0, 1)                                  # [L, N, D]
        absolute_ridge = ridge * float(np.mean(np.var(x, axis=1)))
        means, precisions = [], []
        for start in range(0, self.num_locations, locations_per_step):
            m, p = ledoit_wolf_batched(x[start:start + locations_per_step], absolute_ridge)
            means.append(m)
            precisions.append(p.astype(np.float32))
        self.assign(np.concatenate(means), np.concatenate(precisions))
        return self

    def assign(self, mean: np.ndarray, precision: np.ndarray) -> None:
        if mean.shape != (self.num_locations, self.dim) or precision.shape != (
                self.num_locations, self.dim, self.dim):
            raise ValueError(f"expected mean [L, D] and precision [L, D, D] for L="
                             f"{self.num_locations}, D={self.dim}; got {mean.shape}, "
                             f"{precision.shape}")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(precision))):
            raise ValueError("per-location Gaussian parameters are not finite")
        self.mean.assign(np.asarray(mean, np.float32))
        self.precision.assign(np.asarray(precision, np.float32))

    def score(self, features: tf.Tensor) -> tf.Tensor:
        """``[B, L, D]`` -> ``[B, L]`` Mahalanobis distances, each location to its own Gaussian."""
        x = tf.cast(features, tf.float32)
        if self.normalize:
            x = tf.math.l2_normalize(x, axis=-1, epsilon=_EPS)
        d = x - self.mean
        m = tf.reduce_sum(tf.einsum("bld,lde->ble", d, self.precision) * d, axis=-1)
        return tf.sqrt(tf.maximum(m, 0.0))


class DenseDensity(tf.Module):
    """Scores dense features ``[B, rows, cols, D]`` into a score map ``[B, rows, cols]``."""

    def __init__(self, grid: tuple[int, int], dim: int, per_location: bool,
                 normalize: bool = True):
        super().__init__(name="dense_density")
        self.grid, self.dim, self.per_location = tuple(int(g) for g in grid), int(dim), bool(
            per_location)
        self.normalize = bool(normalize)
        if self.per_location:
            self.gde = LocationGaussian(self.grid[0] * self.grid[1], dim, normalize)
        else:
            self.gde = density_lib.GaussianDensity(dim, normalize)

    def fit(self, features: np.ndarray) -> DenseDensity:
        """Fits on ``[N, rows, cols, D]`` features of normal training images."""
        x = np.asarray(features)
        if x.ndim != 4 or x.shape[1:] != (*self.grid, self.dim):
            raise ValueError(f"expected features [N, {self.grid[0]}, {self.grid[1]}, "
                             f"{self.dim}], got {x.shape}")
        if self.per_location:
            self.gde.fit(x.reshape(x.shape[0], -1, self.dim))
        else:
            self.gde.fit(x.reshape(-1, self.dim))
        return self

    def score_map(self, features: tf.Tensor) -> tf.Tensor:
        shape = tf.shape(features)
        if self.per_location:
            flat = tf.reshape(features, [shape[0], -1, self.dim])
        else:
            flat = tf.reshape(features, [-1, self.dim])
        return tf.reshape(self.gde.score(flat), shape[:3])


def fit_dense_density(features: np.ndarray, per_location: bool,
                      normalize: bool = True) -> DenseDensity:
    """Builds and fits a :class:`DenseDensity` on ``[N, rows, cols, D]`` training features."""
    x = np.asarray(features)
    return DenseDensity(x.shape[1:3], x.shape[-1], per_location, normalize).fit(x)


def save(density: DenseDensity, path: str) -> None:
    """Writes the fitted density to an ``.npz`` file atomically (no pickle)."""
    arrays = {"per_location": np.array(density.per_location),
              "normalize": np.array(density.normalize),
              "grid": np.array(density.grid), "mean": density.gde.mean.numpy(),
              "precision": density.gde.precision.numpy()}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    files.write_bytes(path, buf.getvalue())


def load(path: str) -> DenseDensity:
    """Reads a density written by :func:`save`."""
    with tf.io.gfile.GFile(path, "rb") as f, np.load(io.BytesIO(f.read()),
                                                     allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    try:
        dim = int(arrays["mean"].shape[-1])
        density = DenseDensity(tuple(arrays["grid"]), dim, bool(arrays["per_location"]),
                               bool(arrays["normalize"]))
    except KeyError as e:
        raise ValueError(f"dense density file {path} lacks {e}") from None
    density.gde.assign(arrays["mean"], arrays["precision"])
    return density


def resolve_per_location(choice: bool | None, aligned: bool) -> bool:
    """The flag's choice if given, else the category's alignment (Appendix A.5)."""
    return aligned if choice is None else bool(choice)
