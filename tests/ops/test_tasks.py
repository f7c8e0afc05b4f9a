"""Tests for cutpaste_tf.ops.tasks: pre-augmentation (Sec. 2.1) and the proxy-task views."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf
from helpers import coord_images  # pixel values that name their position
from scipy import stats

from cutpaste_tf.config import TASK_VIEWS, AugmentConfig
from cutpaste_tf.ops import tasks

N_SEEDS = 2000




def _noise_images(batch, height, width, seed=0):
    rng = np.random.default_rng(seed)
    return (0.1 + 0.8 * rng.uniform(size=(batch, height, width, 3))).astype(np.float32)


def _expected_translation(images, dy, dx):
    """out[y, x] = in[clip(y - dy), clip(x - dx)] per example (edge replication)."""
    _, height, width, _ = images.shape
    out = np.empty_like(images)
    for i in range(len(images)):
        rows = np.clip(np.arange(height) - dy[i], 0, height - 1)
        cols = np.clip(np.arange(width) - dx[i], 0, width - 1)
        out[i] = images[i][rows][:, cols]
    return out


# =============================================================================================
# Translation.


def test_apply_translation_hand_built():
    height, width = 12, 20
    images = coord_images(4, height, width)
    dy = np.array([2, -1, 0, height + 5], np.int32)
    dx = np.array([-3, 4, 0, -(width + 7)], np.int32)
    out = tasks.apply_translation(tf.constant(images), {"dy": tf.constant(dy),
                                                        "dx": tf.constant(dx)}).numpy()
    assert out.shape == images.shape
    # Example 0: content moves down 2 and left 3: out[5, 5] is in[3, 8].
    np.testing.assert_array_equal(out[0, 5, 5], images[0, 3, 8])
    np.testing.assert_array_equal(out[0, 2:, :width - 3], images[0, :height - 2, 3:])
    # The uncovered border repeats the edge: top rows copy row 0, right columns copy column W-1.
    np.testing.assert_array_equal(out[0, 0, :width - 3], images[0, 0, 3:])
    np.testing.assert_array_equal(out[0, 1, :width - 3], images[0, 0, 3:])
    np.testing.assert_array_equal(out[0, 4, width - 3:], np.repeat(images[0, 2, -1:], 3, axis=0))
    # Example 1: up 1, right 4.
    np.testing.assert_array_equal(out[1, :height - 1, 4:], images[1, 1:, :width - 4])
    np.testing.assert_array_equal(out[1, -1, 4:], images[1, -1, :width - 4])
    # Example 2: no shift; example 3: shifted past the image, every pixel is the corner pixel.
    np.testing.assert_array_equal(out[2], images[2])
    np.testing.assert_array_equal(out[3], np.broadcast_to(images[3, 0, -1], out[3].shape))
    np.testing.assert_array_equal(out, _expected_translation(images, dy, dx))


@pytest.mark.parametrize("height,width", [(48, 80), (80, 48), (256, 256)])
def test_sample_translation_range_and_uniformity(height, width):
    seeds = tf.constant(np.stack([np.arange(N_SEEDS), np.full(N_SEEDS, 5)], 1), tf.int32)
    fn = tf.function(lambda s: tf.vectorized_map(
        lambda one: tasks.sample_translation(one, 4, height, width, 0.0625), s))
    p = {k: v.numpy().ravel() for k, v in fn(seeds).items()}
    for key, size in (("dy", height), ("dx", width)):
        limit = int(0.0625 * size)  # 3 for 48, 5 for 80, 16 for 256
        values, counts = np.unique(p[key], return_counts=True)
        np.testing.assert_array_equal(values, np.arange(-limit, limit + 1))  # endpoints included
        assert stats.chisquare(counts).pvalue > 1e-3
    assert abs(np.corrcoef(p["dy"], p["dx"])[0, 1]) < 5 / math.sqrt(p["dy"].size)


def test_pre_augment_translation_only_is_an_exact_shift():
    height, width, batch = 48, 80, 64
    images = coord_images(batch, height, width)
    config = AugmentConfig(jitter=(0.0, 0.0, 0.0, 0.0), translate=0.0625)
    out = tasks.pre_augment(tf.constant(images), tf.constant([3, 1]), config).numpy()
    # Read each example's shift off a centre pixel, then check the whole image against it.
    cy, cx = height // 2, width // 2
    dy = cy - np.rint(out[:, cy, cx, 0] * (height - 1)).astype(int)
    dx = cx - np.rint(out[:, cy, cx, 1] * (width - 1)).astype(int)
    assert np.abs(dy).max() <= 3 and np.abs(dx).max() <= 5
    assert len(set(zip(dy, dx))) > 20  # examples draw their own shifts
    np.testing.assert_array_equal(out, _expected_translation(images, dy, dx))


def test_pre_augment_keeps_shape_and_range_and_is_seeded():
    images = _noise_images(16, 48, 80)
    images[:4] = 1.0
    images[4:8] = 0.0
    seed = tf.constant([9, 9])
    both = AugmentConfig(translate=0.0625, jitter=(0.1, 0.1, 0.1, 0.0))
    out = tasks.pre_augment(tf.constant(images), seed, both).numpy()
    assert out.shape == images.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.abs(out[8:] - images[8:]).mean() > 0.01  # it does something
    np.testing.assert_array_equal(out, tasks.pre_augment(tf.constant(images), seed, both).numpy())
    other = tasks.pre_augment(tf.constant(images), tf.constant([9, 10]), both).numpy()
    assert np.abs(out - other).max() > 0.05
    # Nothing to do (no shift, no whole-image jitter) -> identity.
    none = AugmentConfig(translate=0.0, jitter=(0.0, 0.0, 0.0, 0.0))
    np.testing.assert_array_equal(tasks.pre_augment(tf.constant(images), seed, none).numpy(),
                                  images)
    # The default is the paper's pre-augmentation (docs/learning.md, point 16): it moves pixels.
    assert np.abs(tasks.pre_augment(tf.constant(images), seed).numpy() - images).mean() > 0.01
    # Jitter only: no pixel moves, so a constant image stays constant per example.
    flat = np.broadcast_to(np.linspace(0.2, 0.8, 16, dtype=np.float32)[:, None, None, None],
                           (16, 48, 80, 3)).copy()
    flat[..., 0] *= 0.5  # coloured, so hue and saturation act too
    jit = tasks.pre_augment(tf.constant(flat), seed,
                            AugmentConfig(translate=0.0, jitter=(0.1, 0.1, 0.1, 0.1))).numpy()
    assert np.abs(jit - flat).max() > 1e-3
    np.testing.assert_allclose(jit, np.broadcast_to(jit[:, :1, :1], jit.shape), atol=1e-6)


# =============================================================================================
# Views and labels.


@pytest.mark.parametrize("task", sorted(TASK_VIEWS))
def test_make_views_shapes_and_labels(task):
    batch, height, width = 3, 48, 80
    if task == "rotation":  # a quarter turn needs a square image
        width = height
    images = _noise_images(batch, height, width)
    views, labels = tasks.make_views(tf.constant(images), tf.constant([1, 2]), task)
    n_views = len(TASK_VIEWS[task])
    assert views.shape == (batch * n_views, height, width, 3) and views.dtype == tf.float32
    assert labels.dtype == tf.int32
    np.testing.assert_array_equal(labels.numpy(), np.repeat(np.arange(n_views), batch))
    assert views.numpy().min() >= 0.0 and views.numpy().max() <= 1.0
    # Without pre-augmentation view 0 is the input itself, and the others are not.
    views, _ = tasks.make_views(tf.constant(images), tf.constant([1, 2]), task, pre=False)
    v = views.numpy().reshape(n_views, batch, height, width, 3)
    np.testing.assert_array_equal(v[0], images)
    for k in range(1, n_views):
        for i in range(batch):
            assert np.any(v[k, i] != images[i])


def test_binary_task_labels_match_expected_lists():
    images = tf.zeros([4, 32, 40, 3])
    for task, want in [("cutpaste", [0] * 4 + [1] * 4), ("scar", [0] * 4 + [1] * 4),
                       ("union", [0] * 4 + [1] * 4), ("3way", [0] * 4 + [1] * 4 + [2] * 4),
                       ("cutout", [0] * 4 + [1] * 4), ("confetti", [0] * 4 + [1] * 4)]:
        _, labels = tasks.make_views(images, tf.constant([0, 0]), task, pre=False)
        assert labels.numpy().tolist() == want, task


def test_unknown_task_raises():
    with pytest.raises(ValueError):
        tasks.make_views(tf.zeros([2, 32, 32, 3]), tf.constant([0, 0]), "jigsaw")


def test_all_views_share_one_pre_augmented_image():
    batch, height, width = 8, 64, 96
    images = _noise_images(batch, height, width, seed=3)
    jitter = AugmentConfig(jitter=(0.1, 0.1, 0.1, 0.0))
    views, _ = tasks.make_views(tf.constant(images), tf.constant([4, 4]), "3way", jitter)
    v = views.numpy().reshape(3, batch, height, width, 3)
    assert np.abs(v[0] - images).mean() > 0.01  # view 0 is pre-augmented
    scar_max = 16 * 25 + 2 * (16 + 25)  # scar sizes are pixels at every image size
    for i in range(batch):
        # The CutPaste view differs from view 0 only inside one box of at most 15% of the image.
        ys, xs = np.nonzero(np.any(v[1, i] != v[0, i], axis=-1))
        assert ys.size > 0
        box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        assert box <= 0.16 * height * width
        # The Scar view differs from view 0 in at most a scar's worth of pixels.
        changed = np.sum(np.any(v[2, i] != v[0, i], axis=-1))
        assert 0 < changed <= scar_max


def test_union_mixes_cutpaste_and_scar_evenly():
    batch, height, width = 256, 96, 96
    images = tf.constant(_noise_images(batch, height, width, seed=7))
    seed = tf.constant([12, 34])
    # Scars scaled from 256x256, so that they are smaller than any CutPaste patch here.
    config = AugmentConfig(scar_reference_size=256)
    views, labels = tasks.make_views(images, seed, "union", config, pre=False)
    np.testing.assert_array_equal(labels.numpy(), [0] * batch + [1] * batch)
    changed = np.sum(np.any(views.numpy()[batch:] != images.numpy(), axis=-1), axis=(1, 2))
    # CutPaste changes >= 2% of the image (184 px here); a Scar at most w*l + perimeter (~90).
    small = 0.02 * height * width * 0.9
    scale = math.sqrt(height * width) / 256
    large = 16 * 25 * scale**2 + 2 * (16 + 25) * scale + 2
    assert large < small
    assert np.all((changed <= large) | (changed >= small)), "a view is neither CutPaste nor Scar"
    is_scar = changed <= large
    assert abs(is_scar.mean() - 0.5) < 5 * math.sqrt(0.25 / batch)
    # The draw is seeded: same seed, same choice; another seed, another choice.
    again, _ = tasks.make_views(images, seed, "union", config, pre=False)
    np.testing.assert_array_equal(again.numpy(), views.numpy())
    other, _ = tasks.make_views(images, tf.constant([12, 35]), "union", config, pre=False)
    other_changed = np.sum(np.any(other.numpy()[batch:] != images.numpy(), axis=-1), axis=(1, 2))
    assert np.mean((other_changed <= large) != is_scar) > 0.25


def test_union_views_are_the_cutpaste_or_scar_of_the_image():
    # With jitter off each union view must be exactly one of the two ops' outputs for that image,
    # and some of each kind must occur.
    batch, height, width = 64, 48, 80
    images = coord_images(batch, height, width)
    config = AugmentConfig(patch_jitter=0.0)
    views, _ = tasks.make_views(tf.constant(images), tf.constant([2, 2]), "union", config,
                                pre=False)
    union = views.numpy()[batch:]
    y_src = np.rint(union[..., 0] * (height - 1)).astype(int)
    x_src = np.rint(union[..., 1] * (width - 1)).astype(int)
    kinds = []
    for i in range(batch):
        moved = (y_src[i] != np.arange(height)[:, None]) | (x_src[i] != np.arange(width)[None, :])
        ys, xs = np.nonzero(moved)
        assert ys.size > 0
        # A CutPaste view's moved pixels fill an axis-aligned box, translated by one offset.
        offsets = {(a, b) for a, b in zip(y_src[i][moved] - ys, x_src[i][moved] - xs)}
        box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        kinds.append("cutpaste" if len(offsets) == 1 and box == ys.size else "scar")
        np.testing.assert_array_equal(union[i, ..., 2], images[i, ..., 2])  # same image
    n_scar = kinds.count("scar")
    assert 0 < n_scar < batch and abs(n_scar / batch - 0.5) < 5 * math.sqrt(0.25 / batch)


# =============================================================================================
# Eager vs tf.data vs XLA.


def test_make_views_in_tf_data_matches_eager():
    batch, height, width = 4, 48, 80
    data = np.stack([_noise_images(batch, height, width, seed=s) for s in range(3)])
    seeds = tf.constant([[1, 1], [2, 1], [3, 1]])
    for task in ("union",):  # union runs every op; one task keeps the graph build short
        eager = [tasks.make_views(tf.constant(d), s, task) for d, s in zip(data, seeds)]
        ds = tf.data.Dataset.from_tensor_slices((data, seeds)).map(
            lambda im, s: tasks.make_views(im, s, task), num_parallel_calls=2, deterministic=True)
        for (views, labels), (ev, el) in zip(ds, eager):
            np.testing.assert_array_equal(labels.numpy(), el.numpy())
            np.testing.assert_array_equal(views.numpy(), ev.numpy())
        assert np.abs(eager[0][0].numpy() - eager[1][0].numpy()).max() > 0.1


def test_make_views_under_xla_matches_eager():
    # Union exercises everything: translation, jitter, CutPaste, Scar and the coin.
    batch, height, width = 6, 48, 80
    images = tf.constant(_noise_images(batch, height, width, seed=5))
    xla = tf.function(lambda im, s: tasks.make_views(im, s, "union"), jit_compile=True)
    for seed in ([1, 2], [3, 4], [5, 6]):
        seed = tf.constant(seed)
        ev, el = tasks.make_views(images, seed, "union")
        xv, xl = xla(images, seed)
        np.testing.assert_array_equal(xl.numpy(), el.numpy())
        np.testing.assert_allclose(xv.numpy(), ev.numpy(), atol=1e-5, rtol=0)
