"""Tests for cutpaste_tf.localization.dense: the patch grid and chunked dense embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from cutpaste_tf.localization import dense


@pytest.mark.parametrize("size,patch,stride,grid", [
    ((256, 256), 32, 4, (57, 57)),   # the paper's 57 x 57 (Appendix A.5)
    ((64, 64), 16, 4, (13, 13)),
    ((112, 144), 32, 4, (21, 29)),
    ((66, 70), 16, 4, (13, 14)),     # 66 - 16 = 50 is not a multiple of 4
])
def test_grid_size(size, patch, stride, grid):
    assert dense.grid_size(size, patch, stride) == grid


def test_grid_size_refuses_a_patch_larger_than_the_image():
    with pytest.raises(ValueError, match="larger than"):
        dense.grid_size((24, 64), 32, 4)


def _images(batch=2, height=30, width=42, seed=0):
    return np.random.default_rng(seed).uniform(size=(batch, height, width, 3)).astype(np.float32)


def test_extract_location_ij_is_the_patch_at_i_stride_j_stride():
    images = _images()
    out = dense.extract(tf.constant(images), 8, 3).numpy()
    assert out.shape == (2, 8, 12, 8, 8, 3)
    for b, i, j in [(0, 0, 0), (1, 7, 11), (0, 3, 5)]:
        np.testing.assert_array_equal(out[b, i, j], images[b, 3 * i:3 * i + 8, 3 * j:3 * j + 8])


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_dense_features_match_a_per_patch_loop_for_any_chunk_size(chunk):
    """A toy embedding (channel means and the top-left pixel) computed patch by patch."""
    images = _images()

    def embed(x):
        return tf.concat([tf.reduce_mean(x, axis=[1, 2]), x[:, 0, 0, :]], axis=-1)

    out = dense.dense_features(embed, tf.constant(images), 8, 3, chunk_size=chunk).numpy()
    assert out.shape == (2, 8, 12, 6)
    for b in range(2):
        for i in range(8):
            for j in range(12):
                p = images[b, 3 * i:3 * i + 8, 3 * j:3 * j + 8]
                np.testing.assert_allclose(out[b, i, j, :3], p.mean(axis=(0, 1)), atol=1e-6)
                np.testing.assert_array_equal(out[b, i, j, 3:], p[0, 0])


def test_dense_embedder_with_a_model_matches_calling_the_model_on_each_patch():
    from cutpaste_tf.models import build_cutpaste_model

    tf.keras.utils.set_random_seed(0)
    model = build_cutpaste_model(2, (16,), input_shape=(None, None, 3))
    images = _images(1, 40, 48)
    embedder = dense.DenseEmbedder(model, (40, 48), 32, 8, "pooled", chunk_size=4)
    out = embedder(tf.constant(images)).numpy()
    assert embedder.grid == (2, 3) and out.shape == (1, 2, 3, 512)
    ref = model(tf.constant(images[:, 8:40, 16:48]), training=False)["pooled"].numpy()
    np.testing.assert_allclose(out[0, 1, 2], ref[0], rtol=1e-4, atol=1e-5)
