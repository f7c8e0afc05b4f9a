"""Tests for cutpaste_tf.ops.patches: random crops and patch-level proxy-task views (Eq. 3)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from helpers import coord_images  # pixel values that name their position
from scipy import stats

from cutpaste_tf.config import AugmentConfig
from cutpaste_tf.ops import cutpaste as cp
from cutpaste_tf.ops import patches

N_SEEDS = 2000


def _many(sampler, n=N_SEEDS):
    """``sampler(seed)`` (batch of one) for n seeds (k, 7), as flat [n] arrays."""
    seeds = tf.constant(np.stack([np.arange(n), np.full(n, 7)], 1), tf.int32)
    fn = tf.function(lambda s: tf.vectorized_map(sampler, s))
    return {k: v.numpy()[:, 0] for k, v in fn(seeds).items()}


def _no_jitter(params):
    params = dict(params)
    params.pop("jitter")
    return params


def test_apply_crop_hand_built_non_square():
    images = coord_images(3, 40, 72)
    params = {"y": tf.constant([0, 8, 20]), "x": tf.constant([0, 39, 5])}
    out = patches.apply_crop(tf.constant(images), params, (20, 33)).numpy()
    assert out.shape == (3, 20, 33, 3)
    np.testing.assert_array_equal(out[0], images[0, :20, :33])
    np.testing.assert_array_equal(out[1], images[1, 8:28, 39:72])  # touches the right edge
    np.testing.assert_array_equal(out[2], images[2, 20:40, 5:38])  # touches the bottom edge


def test_crop_corners_cover_every_position_uniformly():
    height, width, crop = 48, 80, (32, 40)
    p = _many(lambda s: patches.sample_crop(s, 1, height, width, crop))
    ys, xs = p["y"], p["x"]
    assert ys.min() == 0 and ys.max() == height - crop[0]
    assert xs.min() == 0 and xs.max() == width - crop[1]
    for values, n in ((ys, height - crop[0] + 1), (xs, width - crop[1] + 1)):
        counts = np.bincount(values, minlength=n)
        assert stats.chisquare(counts).pvalue > 1e-3
    assert abs(stats.pearsonr(ys, xs)[0]) < 0.1


def test_crop_that_does_not_fit_is_refused():
    with pytest.raises(ValueError, match="must fit"):
        patches.sample_crop(tf.constant([0, 0]), 2, 32, 64, (40, 40))


def test_random_crop_is_a_window_of_the_image_and_varies_over_the_batch():
    images = coord_images(16, 48, 80)
    out = patches.random_crop(tf.constant(images), tf.constant([3, 4]), (32, 32)).numpy()
    ys = np.rint(out[:, 0, 0, 0] * 47).astype(int)
    xs = np.rint(out[:, 0, 0, 1] * 79).astype(int)
    for b in range(16):
        np.testing.assert_array_equal(out[b], images[b, ys[b]:ys[b] + 32, xs[b]:xs[b] + 32])
    assert len(set(zip(ys, xs))) > 8


@pytest.mark.parametrize("task,views", [("3way", 3), ("cutpaste", 2), ("union", 2)])
def test_make_patch_views_shapes_labels_and_normal_view_is_a_crop(task, views):
    images = tf.constant(coord_images(4, 48, 80))
    config = AugmentConfig(translate=0.0, jitter=(0.0, 0.0, 0.0, 0.0))
    out, labels = patches.make_patch_views(images, tf.constant([1, 2]), task, (32, 40), config)
    assert out.shape == (4 * views, 32, 40, 3)
    np.testing.assert_array_equal(labels.numpy(), np.repeat(np.arange(views), 4))
    normal = out[:4].numpy()  # without pre-augmentation, view 0 is an exact crop
    for b in range(4):
        y = int(np.rint(normal[b, 0, 0, 0] * 47))
        x = int(np.rint(normal[b, 0, 0, 1] * 79))
        np.testing.assert_array_equal(normal[b], images.numpy()[b, y:y + 32, x:x + 40])
    # The augmented views differ from their normal crop somewhere.
    for k in range(1, views):
        assert np.all(np.abs(out[4 * k:4 * (k + 1)].numpy() - normal).max(axis=(1, 2, 3)) > 0)


def test_patch_scars_are_sized_for_the_full_image_not_the_crop():
    """With scaling on, a scar in a 64x64 crop of a 256x256 image has the paper's 2-16 px
    width; by default (pixels at every size) crop and image agree anyway."""
    scaled = AugmentConfig(scar_reference_size=256)
    w_full = _many(lambda s: _no_jitter(cp.sample_scar(s, 1, 64, 64, scaled, (256, 256))))
    w_own = _many(lambda s: _no_jitter(cp.sample_scar(s, 1, 64, 64, scaled)))
    w_default = _many(lambda s: _no_jitter(cp.sample_scar(s, 1, 64, 64, scale_size=(256, 256))))
    w_full, w_own = w_full["scar_w"], w_own["scar_w"]
    assert 2.0 <= w_full.min() and w_full.max() < 16.0 and w_full.max() > 14.0
    assert w_own.max() < 4.0  # scaled by 64 / 256 when the crop is taken for the image
    np.testing.assert_array_equal(w_default["scar_w"], w_full)
    assert (cp.scar_canvas_size(64, 64, scaled, (256, 256))
            > cp.scar_canvas_size(64, 64, scaled))


def test_make_patch_views_under_xla_and_in_tf_data_match_eager():
    images = tf.constant(np.random.default_rng(0).uniform(0.1, 0.9, (4, 48, 80, 3)), tf.float32)
    # Colour jitter is XLA-tested in test_color / test_tasks; without it this compiles in
    # seconds and still runs translation, the crop and the full-size Scar (the 3-way graph
    # takes ~10x longer to compile; its CutPaste part is XLA-tested in test_tasks).
    config = AugmentConfig(patch_jitter=0.0, jitter=(0.0, 0.0, 0.0, 0.0))

    def fn(im, s):
        return patches.make_patch_views(im, s, "scar", (32, 32), config)

    xla = tf.function(fn, jit_compile=True)
    ds = tf.data.Dataset.from_tensors((images, tf.constant([5, 6]))).map(fn)
    eager_views, eager_labels = fn(images, tf.constant([5, 6]))
    xla_views, xla_labels = xla(images, tf.constant([5, 6]))
    data_views, _ = next(iter(ds))
    np.testing.assert_array_equal(xla_labels.numpy(), eager_labels.numpy())
    np.testing.assert_allclose(xla_views.numpy(), eager_views.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_array_equal(data_views.numpy(), eager_views.numpy())
