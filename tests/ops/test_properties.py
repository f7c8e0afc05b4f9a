"""Property-based tests (hypothesis) of every augmentation op over random shapes, dtypes and seeds.

Images are 16 px and up on each side, of any aspect ratio, float32 in [0, 1] or uint8 in 0..255
(the ops scale uint8 to [0, 1] first). For every op: the output is finite, within [0, 1],
float32, of the expected shape; views carry the right labels; CutPaste and Scar change only a
region no larger than their patch; a uint8 batch gives exactly what its float copy gives.
Eager TensorFlow is slow per call, so ``max_examples`` stays small and there is no deadline.
"""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cutpaste_tf.config import TASK_VIEWS, AugmentConfig
from cutpaste_tf.ops import color, cutpaste, tasks

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def batches(draw, max_side=96):
    """(images, float copy in [0, 1], seed): a random batch, shape, dtype and seed."""
    batch = draw(st.integers(1, 3))
    height = draw(st.integers(16, max_side))
    # Any aspect ratio: sometimes a long strip, e.g. 16 x 160.
    width = draw(st.one_of(st.integers(16, max_side), st.integers(16, 10 * height)))
    width = min(width, 320)
    dtype = draw(st.sampled_from(["float32", "uint8"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if dtype == "uint8":
        images = rng.integers(0, 256, (batch, height, width, 3), np.uint8)
        floats = images.astype(np.float32) / 255.0
    else:
        # Include the extremes 0 and 1 exactly, where clipping bugs show.
        images = rng.choice([0.0, 1.0, 0.5], size=(batch, height, width, 3)).astype(np.float32)
        images = np.where(rng.random(images.shape) < 0.5, images,
                          rng.random(images.shape, dtype=np.float32))
        floats = images
    seed = tf.constant(draw(st.lists(st.integers(0, 2**32 - 1), min_size=2, max_size=2)),
                       tf.int64)
    return tf.constant(images), floats, seed


def _check_range(out, shape):
    out = out.numpy() if hasattr(out, "numpy") else out
    assert out.dtype == np.float32
    assert out.shape == shape
    assert np.all(np.isfinite(out))
    assert out.min() >= 0.0 and out.max() <= 1.0
    return out


def _changed_fraction(out, floats):
    """Largest fraction of any image's pixels that an op changed."""
    changed = np.any(np.abs(out - floats) > 1e-6, axis=-1)
    return changed.reshape(changed.shape[0], -1).mean(axis=1).max()


@pytest.mark.parametrize("op, canvas_size", [
    (cutpaste.cutpaste, cutpaste.cutpaste_canvas_size),
    (cutpaste.scar, cutpaste.scar_canvas_size),
], ids=["cutpaste", "scar"])
@SETTINGS
@given(batches())
def test_patch_op_properties(op, canvas_size, example):
    images, floats, seed = example
    out = _check_range(op(images, seed), floats.shape)
    _, h, w, _ = floats.shape
    canvas_h, canvas_w = canvas_size(h, w)
    assert _changed_fraction(out, floats) <= canvas_h * canvas_w / (h * w) + 1e-9
    same = op(tf.constant(floats), seed).numpy()
    np.testing.assert_allclose(out, same, atol=1e-6)  # uint8 == its float copy


@SETTINGS
@given(batches(), st.sampled_from([0.0, 0.1, 0.5, (0.4, 0.4, 0.4, 0.5), (1.0, 0.0, 2.0, 0.0)]))
def test_color_jitter_properties(example, strength):
    images, floats, seed = example
    out = _check_range(color.color_jitter(images, seed, strength), floats.shape)
    if strength == 0.0:
        np.testing.assert_allclose(out, floats, atol=2e-6)  # no jitter: the image itself
    same = color.color_jitter(tf.constant(floats), seed, strength).numpy()
    np.testing.assert_allclose(out, same, atol=1e-6)


@SETTINGS
@given(batches(), st.sampled_from([0.0, 0.0625, 0.25]))
def test_pre_augment_properties(example, translate):
    images, floats, seed = example
    config = AugmentConfig(translate=translate, jitter=(0.1, 0.1, 0.1, 0.1))
    out = _check_range(tasks.pre_augment(images, seed, config), floats.shape)
    same = tasks.pre_augment(tf.constant(floats), seed, config).numpy()
    np.testing.assert_allclose(out, same, atol=1e-6)


@SETTINGS
@given(batches(max_side=64), st.sampled_from(sorted(TASK_VIEWS)), st.booleans())
def test_make_views_properties(example, task, pre):
    images, floats, seed = example
    if task == "rotation":  # quarter turns need square images: keep the top-left square
        side = min(floats.shape[1:3])
        images, floats = images[:, :side, :side], floats[:, :side, :side]
    b, h, w, _ = floats.shape
    names = TASK_VIEWS[task]
    views, labels = tasks.make_views(images, seed, task, pre=pre)
    views = _check_range(views, (b * len(names), h, w, 3))
    labels = labels.numpy()
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, np.repeat(np.arange(len(names)), b))
    blocks = views.reshape(len(names), b, h, w, 3)
    if not pre:
        np.testing.assert_allclose(blocks[0], floats, atol=1e-6)  # label 0: the image itself
    # Every augmented view (label >= 1) is its normal view with at most one patch changed.
    for k, name in enumerate(names[1:], start=1):
        limit = 0.0
        if name in ("cutpaste", "union"):
            ch, cw = cutpaste.cutpaste_canvas_size(h, w)
            limit = ch * cw
        if name in ("scar", "union", "scar_cutout"):
            sy, sx = cutpaste.scar_canvas_size(h, w)
            limit = max(limit, sy * sx)
        if name.startswith("cutout"):  # a box of CutPaste's size
            ch, cw = cutpaste.cutpaste_canvas_size(h, w)
            limit = ch * cw
        if name.startswith("rot") or name == "confetti":  # whole image / blobs anywhere
            limit = h * w
        assert _changed_fraction(blocks[k], blocks[0]) <= limit / (h * w) + 1e-9
    same, _ = tasks.make_views(tf.constant(floats), seed, task, pre=pre)
    np.testing.assert_allclose(views, same.numpy(), atol=1e-6)


def test_other_integer_images_are_refused():
    import pytest

    with pytest.raises(TypeError, match="uint8 .0..255. or float .0..1., got int32"):
        tasks.make_views(tf.zeros([1, 16, 16, 3], tf.int32), tf.constant([0, 0]), "3way")
