"""Feature checks and L2 normalisation shared by the density estimators (NumPy for fitting,
TensorFlow for scoring)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

EPS = 1e-12  # tf.math.l2_normalize's epsilon on the squared norm.


def check_features(features: np.ndarray, dim: int | None, what: str) -> np.ndarray:
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


def l2_normalize_np(x: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation in NumPy, matching ``tf.math.l2_normalize``."""
    sq = np.sum(x * x, axis=1, keepdims=True)
    return x / np.sqrt(np.maximum(sq, EPS))


def prepare_input(features: tf.Tensor, dim: int, normalize: bool) -> tf.Tensor:
    """Cast features to float32, check the static shape, and L2-normalise rows if asked."""
    x = tf.cast(tf.convert_to_tensor(features), tf.float32)
    if x.shape.rank is not None:
        if x.shape.rank != 2:
            raise ValueError(f"features must have shape [batch, {dim}], got {x.shape}")
        if x.shape[-1] is not None and x.shape[-1] != dim:
            raise ValueError(f"features have dim {x.shape[-1]}, expected {dim}")
    if normalize:
        x = tf.math.l2_normalize(x, axis=-1, epsilon=EPS)
    return x
