"""Receptive-field upsampling with Gaussian smoothing (Appendix A.5, following FCDD).

A score map ``[B, rows, cols]`` of patches of ``patch`` pixels at ``stride`` becomes a
full-resolution map by a stride-``stride`` transposed convolution with one ``patch x patch``
Gaussian kernel: each location spreads its score over the pixels of its own patch, weighted by
a Gaussian centred on the patch centre. The result is divided by the same transposed
convolution of a map of ones, so every pixel gets a weighted *average* of the scores of the
patches that contain it: a constant map stays constant and scores keep their scale.

Sigma defaults to ``patch / 4`` (8 px for the paper's 32 px patches; the paper does not give
it): the kernel then falls to e^-2 = 0.14 of its peak at the middle of the patch's edges, so a
patch mostly speaks for its centre but still covers all its pixels. The transposed
convolution covers ``(rows - 1) * stride + patch`` rows; when the image is larger (its size
minus the patch is not a multiple of the stride) the remaining bottom rows and right columns
repeat the last covered ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf


def gaussian_kernel(patch_size: int, sigma: float) -> np.ndarray:
    """``[patch, patch]`` Gaussian centred on the patch centre (pixel centres at i + 0.5)."""
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    t = np.arange(patch_size, dtype=np.float64) + 0.5 - patch_size / 2.0
    g = np.exp(-0.5 * (t / sigma) ** 2)
    return np.outer(g, g)


def upsample(scores: tf.Tensor, image_size: Sequence[int], patch_size: int, stride: int,
             sigma: float) -> tf.Tensor:
    """``[B, rows, cols]`` patch scores -> ``[B, H, W]`` pixel scores (see module doc)."""
    scores = tf.convert_to_tensor(scores, tf.float32)
    height, width = int(image_size[0]), int(image_size[1])
    rows, cols = scores.shape[1], scores.shape[2]
    if rows is None or cols is None:
        shape = tf.shape(scores)
        rows, cols = shape[1], shape[2]
    kernel = tf.constant(gaussian_kernel(patch_size, sigma)[:, :, None, None], tf.float32)
    covered_h = (rows - 1) * stride + patch_size
    covered_w = (cols - 1) * stride + patch_size
    x = scores[..., None]
    batch = tf.shape(x)[0]

    def spread(t):
        return tf.nn.conv2d_transpose(t, kernel, tf.stack([batch, covered_h, covered_w, 1]),
                                      strides=stride, padding="VALID")

    weighted = spread(x)
    weights = spread(tf.ones_like(x))
    # Every covered pixel lies in at least one patch, so weights > 0 (but may underflow to 0 for
    # a sigma far below the patch size; such pixels get 0 rather than NaN).
    out = tf.math.divide_no_nan(weighted, weights)[..., 0]
    rows_idx = tf.minimum(tf.range(height), covered_h - 1)
    cols_idx = tf.minimum(tf.range(width), covered_w - 1)
    out = tf.gather(out, rows_idx, axis=1)
    return tf.gather(out, cols_idx, axis=2)
