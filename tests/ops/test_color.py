"""Tests for cutpaste_tf.ops.color against an independent NumPy model of torchvision's ColorJitter.

torchvision (``transforms.ColorJitter`` and ``functional_tensor``) on float images:
brightness ``clip(f x)``, contrast ``clip(f x + (1 - f) mean(gray(x)))``, saturation
``clip(f x + (1 - f) gray(x))``, hue ``h <- (h + d) mod 1`` in HSV, with
gray = 0.2989 R + 0.587 G + 0.114 B; the four applied in a random permutation.
"""

from __future__ import annotations

import colorsys
import itertools

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from cutpaste_tf.ops import color

PERMUTATIONS = list(itertools.permutations(range(4)))  # op ids: b, c, s, h
N_SEEDS = 2000


# ---------------------------------------------------------------------------------------------
# NumPy reference (float64, one example at a time, colorsys for the hue).


def _gray(x: np.ndarray) -> np.ndarray:
    return 0.2989 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]


def _hue(x: np.ndarray, delta: float) -> np.ndarray:
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            h, s, v = colorsys.rgb_to_hsv(*x[i, j])
            out[i, j] = colorsys.hsv_to_rgb((h + delta) % 1.0, s, v)
    return out


def reference_jitter(image, brightness, contrast, saturation, hue, order, mask=None):
    """torchvision's ColorJitter on one float image [H, W, 3] with given factors and order."""
    x = np.asarray(image, np.float64)
    for op in order:
        if op == color.BRIGHTNESS:
            x = np.clip(brightness * x, 0.0, 1.0)
        elif op == color.CONTRAST:
            gray = _gray(x)
            mean = gray.mean() if mask is None else gray[np.asarray(mask, bool)].mean()
            x = np.clip(contrast * x + (1.0 - contrast) * mean, 0.0, 1.0)
        elif op == color.SATURATION:
            x = np.clip(saturation * x + (1.0 - saturation) * _gray(x)[..., None], 0.0, 1.0)
        elif op == color.HUE:
            x = _hue(x, hue)
        else:
            raise AssertionError(op)
    return x


def _reference_batch(images, params, masks=None):
    p = {k: np.asarray(v) for k, v in params.items()}
    return np.stack([
        reference_jitter(images[i], p["brightness"][i], p["contrast"][i], p["saturation"][i],
                         p["hue"][i], p["order"][i], None if masks is None else masks[i])
        for i in range(len(images))])


def _images(batch, height, width, seed=0):
    """Random colours plus the hard cases: pure black, white, greys, saturated primaries."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(batch, height, width, 3))
    x[:, 0, 0] = 0.0
    x[:, 0, 1] = 1.0
    x[:, 1, 0] = rng.uniform(size=(batch, 1))  # grey: r = g = b
    x[:, 1, 1] = [1.0, 0.0, 0.0]
    x[:, -1, -1] = [0.0, 0.2, 1.0]
    x[:, -1, 0] = [0.98, 0.99, 0.02]
    return x.astype(np.float32)


def _hand_params(batch, rng, spread=0.5, hue=0.5):
    """Each example an explicit permutation (all 24 in turn) and strong factors (clipping)."""
    return {
        "brightness": rng.uniform(1 - spread, 1 + spread, batch).astype(np.float32),
        "contrast": rng.uniform(1 - spread, 1 + spread, batch).astype(np.float32),
        "saturation": rng.uniform(1 - spread, 1 + spread, batch).astype(np.float32),
        "hue": rng.uniform(-hue, hue, batch).astype(np.float32),
        "order": np.array([PERMUTATIONS[i % 24] for i in range(batch)], np.int32),
    }


# ---------------------------------------------------------------------------------------------
# apply_jitter == torchvision semantics.


def test_reference_model_is_not_trivial():
    # Guard the guard: the reference itself distinguishes orders and each operation acts.
    img = _images(1, 4, 6)[0]
    a = reference_jitter(img, 1.3, 0.7, 1.4, 0.2, (0, 1, 2, 3))
    b = reference_jitter(img, 1.3, 0.7, 1.4, 0.2, (3, 2, 1, 0))
    assert np.abs(a - b).max() > 1e-3
    assert np.allclose(reference_jitter(img, 1, 1, 1, 0.0, (0, 1, 2, 3)), img, atol=1e-12)


@pytest.mark.parametrize("height,width", [(5, 9), (9, 5)])
def test_apply_jitter_matches_reference_for_all_24_orders(height, width):
    rng = np.random.default_rng(height)
    images = _images(48, height, width, seed=width)
    params = _hand_params(48, rng)
    got = color.apply_jitter(tf.constant(images), {k: tf.constant(v) for k, v in params.items()})
    assert got.shape == images.shape and got.dtype == tf.float32
    np.testing.assert_allclose(got.numpy(), _reference_batch(images, params), atol=1e-5, rtol=0)


def test_apply_jitter_matches_reference_with_sampled_params():
    images = _images(32, 6, 10, seed=3)
    params = color.sample_jitter(tf.constant([4, 2]), 32, 0.1)
    got = color.apply_jitter(tf.constant(images), params)
    np.testing.assert_allclose(got.numpy(), _reference_batch(images, params), atol=1e-5, rtol=0)
    # Strength 0.1 does change the images (so the comparison above is not vacuous).
    assert np.abs(got.numpy() - images).max() > 1e-3


def test_apply_jitter_masked_contrast_uses_mean_over_mask():
    height, width, batch = 7, 11, 24
    rng = np.random.default_rng(5)
    images = _images(batch, height, width, seed=6)
    params = _hand_params(batch, rng)
    masks = np.zeros((batch, height, width), bool)
    for i in range(batch):  # a random box per example, away from the hard-case corners
        y, x = rng.integers(0, height - 2), rng.integers(0, width - 3)
        masks[i, y:y + rng.integers(2, height - y + 1), x:x + rng.integers(3, width - x + 1)] = True
        images[i][masks[i]] *= 0.5  # make the masked mean clearly differ from the global one
    tf_params = {k: tf.constant(v) for k, v in params.items()}
    got = color.apply_jitter(tf.constant(images), tf_params, tf.constant(masks))
    np.testing.assert_allclose(got.numpy(), _reference_batch(images, params, masks), atol=1e-5)
    # The mask matters: without it the contrast mean (and so the result) is different.
    unmasked = color.apply_jitter(tf.constant(images), tf_params).numpy()
    assert np.abs(unmasked - got.numpy()).max() > 1e-3
    # A float mask behaves as the bool one.
    as_float = color.apply_jitter(tf.constant(images), tf_params, tf.constant(masks, tf.float32))
    np.testing.assert_allclose(as_float.numpy(), got.numpy(), atol=1e-7)


def test_each_operation_alone_matches_torchvision():
    images = _images(4, 5, 7, seed=9)
    ident = {"brightness": 1.0, "contrast": 1.0, "saturation": 1.0, "hue": 0.0}
    cases = [("brightness", 1.4, color.BRIGHTNESS), ("contrast", 0.6, color.CONTRAST),
             ("saturation", 1.7, color.SATURATION), ("hue", 0.3, color.HUE)]
    for name, value, op in cases:
        values = dict(ident, **{name: value})
        params = {k: tf.fill([4], float(v)) for k, v in values.items()}
        params["order"] = tf.constant([[op] + [o for o in range(4) if o != op]] * 4, tf.int32)
        got = color.apply_jitter(tf.constant(images), params).numpy()
        want = np.stack([reference_jitter(im, order=[op], **values) for im in images])
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=name)
    # Explicit torchvision facts: brightness is multiplicative (black stays black) ...
    params = {k: tf.fill([4], float(v)) for k, v in dict(ident, brightness=1.5).items()}
    params["order"] = tf.constant([[0, 1, 2, 3]] * 4, tf.int32)
    out = color.apply_jitter(tf.constant(images), params).numpy()
    assert np.all(out[:, 0, 0] == 0.0)
    np.testing.assert_allclose(out[:, 2:, 2:], np.minimum(1.5 * images[:, 2:, 2:], 1.0), atol=1e-6)
    # ... and saturation 0 gives the grey image in every channel.
    params = {k: tf.fill([4], float(v)) for k, v in dict(ident, saturation=0.0).items()}
    params["order"] = tf.constant([[2, 0, 1, 3]] * 4, tf.int32)
    out = color.apply_jitter(tf.constant(images), params).numpy()
    np.testing.assert_allclose(out, np.repeat(_gray(images)[..., None], 3, -1), atol=1e-6)


def test_rgb_to_grayscale_weights():
    x = tf.constant([[[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.25, 1.0]]]])
    got = color.rgb_to_grayscale(x).numpy()
    assert got.shape == (1, 1, 4, 1)
    np.testing.assert_allclose(got[0, 0, :, 0], [0.2989, 0.587, 0.114,
                                                 0.5 * 0.2989 + 0.25 * 0.587 + 0.114], atol=1e-7)


# ---------------------------------------------------------------------------------------------
# Sampling: ranges and distributions over many seeds.


def _sample_many(strength, n_seeds=N_SEEDS, batch=1):
    seeds = tf.constant(np.stack([np.arange(n_seeds), np.full(n_seeds, 77)], 1), tf.int32)
    fn = tf.function(lambda s: tf.vectorized_map(
        lambda one: color.sample_jitter(one, batch, strength), s))
    return {k: v.numpy().reshape((-1,) + tuple(v.shape[2:])) for k, v in fn(seeds).items()}


def test_sample_jitter_ranges_and_uniformity_over_seeds():
    p = _sample_many(0.1)
    for name in ("brightness", "contrast", "saturation"):
        v = p[name]
        assert v.shape == (N_SEEDS,) and v.dtype == np.float32
        assert v.min() >= np.float32(0.9) and v.max() <= np.float32(1.1), name
        assert v.min() < 0.901 and v.max() > 1.099, name  # the whole range is used
        assert stats.kstest(v, stats.uniform(loc=0.9, scale=0.2).cdf).pvalue > 1e-3, name
    h = p["hue"]
    assert h.min() >= np.float32(-0.1) and h.max() <= np.float32(0.1)
    assert h.min() < -0.099 and h.max() > 0.099
    assert stats.kstest(h, stats.uniform(loc=-0.1, scale=0.2).cdf).pvalue > 1e-3
    # The four draws are independent of each other.
    factors = np.stack([p["brightness"], p["contrast"], p["saturation"], h]).astype(np.float64)
    corr = np.corrcoef(factors)[np.triu_indices(4, 1)]
    assert np.all(np.abs(corr) < 5 / np.sqrt(N_SEEDS))


def test_sample_jitter_orders_are_uniform_permutations():
    p = _sample_many(0.1, n_seeds=2000, batch=16)  # 32,000 examples
    order = p["order"]
    assert order.shape == (32000, 4) and order.dtype == np.int32
    np.testing.assert_array_equal(np.sort(order, axis=1), np.tile(np.arange(4), (32000, 1)))
    codes = order @ np.array([64, 16, 4, 1])
    counts = np.array([np.sum(codes == np.dot(q, [64, 16, 4, 1])) for q in PERMUTATIONS])
    assert counts.sum() == 32000 and counts.min() > 0  # all 24 orders occur
    assert stats.chisquare(counts).pvalue > 1e-3
    expected = 32000 / 24
    assert np.all(np.abs(counts - expected) < 6 * np.sqrt(expected))
    # Each op is equally likely at each position (e.g. hue is not always last).
    for op in range(4):
        position = np.argmax(order == op, axis=1)
        assert stats.chisquare(np.bincount(position, minlength=4)).pvalue > 1e-3


def test_sample_jitter_per_op_strengths_and_torchvision_lower_bound():
    p = _sample_many((0.2, 0.0, 1.5, 0.05), n_seeds=1000)
    assert p["brightness"].min() >= np.float32(0.8) and p["brightness"].max() <= np.float32(1.2)
    assert p["brightness"].max() - p["brightness"].min() > 0.39
    np.testing.assert_array_equal(p["contrast"], np.ones(1000, np.float32))
    # torchvision: [max(0, 1 - s), 1 + s] -> saturation in [0, 2.5].
    assert p["saturation"].min() >= 0.0 and p["saturation"].max() <= np.float32(2.5)
    assert p["saturation"].min() < 0.02 and p["saturation"].max() > 2.48
    assert np.abs(p["hue"]).max() <= np.float32(0.05) and np.abs(p["hue"]).max() > 0.049


def test_batch_examples_draw_independently():
    p = color.sample_jitter(tf.constant([1, 1]), 64, 0.1)
    for name in ("brightness", "contrast", "saturation", "hue"):
        assert len(np.unique(p[name].numpy())) == 64, name
    assert len({tuple(r) for r in p["order"].numpy()}) > 12


def test_sample_jitter_determinism_and_seed_sensitivity():
    a = color.sample_jitter(tf.constant([5, 6]), 32, 0.1)
    b = color.sample_jitter(tf.constant([5, 6]), 32, 0.1)
    c = color.sample_jitter(tf.constant([5, 7]), 32, 0.1)
    for k in a:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy())
    assert all(np.mean(a[k].numpy() == c[k].numpy()) < 0.2 for k in a if k != "order")
    assert np.mean(np.all(a["order"].numpy() == c["order"].numpy(), axis=1)) < 0.3


def test_invalid_strengths_raise():
    for bad in (-0.1, (0.1, 0.1, 0.1, 0.6), (0.1, 0.1, 0.1), (0.1, -0.2, 0.1, 0.1)):
        with pytest.raises(ValueError):
            color.sample_jitter(tf.constant([0, 0]), 2, bad)


# ---------------------------------------------------------------------------------------------
# color_jitter end to end.


def test_strength_zero_is_identity():
    images = tf.constant(_images(8, 6, 10))
    out = color.color_jitter(images, tf.constant([3, 3]), 0.0)
    np.testing.assert_array_equal(out.numpy(), images.numpy())
    # Also with the HSV round trip: unit factors and zero hue change nothing beyond rounding.
    params = color.sample_jitter(tf.constant([3, 3]), 8, 0.0)
    np.testing.assert_allclose(color.apply_jitter(images, params, use_hue=True).numpy(),
                               images.numpy(), atol=2e-6)


@pytest.mark.parametrize("strength", [0.1, 0.5, (0.9, 0.9, 0.9, 0.5)])
def test_output_stays_in_unit_range(strength):
    images = _images(64, 8, 12, seed=11)
    images[::4] = 1.0
    images[1::4] = 0.0
    out = color.color_jitter(tf.constant(images), tf.constant([8, 1]), strength).numpy()
    assert out.shape == images.shape and np.all(np.isfinite(out))
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_color_jitter_same_seed_same_output_different_seed_differs():
    images = tf.constant(_images(8, 12, 20, seed=2))
    a = color.color_jitter(images, tf.constant([1, 2]), 0.1).numpy()
    np.testing.assert_array_equal(a, color.color_jitter(images, tf.constant([1, 2]), 0.1).numpy())
    b = color.color_jitter(images, tf.constant([2, 1]), 0.1).numpy()
    assert np.abs(a - b).max() > 1e-3
    # It is sample_jitter + apply_jitter with the same seed.
    params = color.sample_jitter(tf.constant([1, 2]), 8, 0.1)
    np.testing.assert_array_equal(a, color.apply_jitter(images, params).numpy())


def test_xla_and_tf_data_match_eager():
    images = tf.constant(_images(16, 12, 20, seed=4))  # non-square
    seeds = tf.constant([[1, 2], [3, 4], [5, 6]])
    eager = [color.color_jitter(images, s, 0.1).numpy() for s in seeds]
    xla = tf.function(lambda im, s: color.color_jitter(im, s, 0.1), jit_compile=True)
    for s, e in zip(seeds, eager):
        # The draws feed only continuous maps here, so one-ulp differences stay ~1e-6.
        np.testing.assert_allclose(xla(images, s).numpy(), e, atol=1e-5, rtol=0)
    jit_sample = tf.function(lambda s: color.sample_jitter(s, 16, 0.1), jit_compile=True)
    for s in seeds:
        a, b = color.sample_jitter(s, 16, 0.1), jit_sample(s)
        np.testing.assert_array_equal(a["order"].numpy(), b["order"].numpy())
        for k in ("brightness", "contrast", "saturation", "hue"):
            np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), atol=1e-6, rtol=0)
    ds = tf.data.Dataset.from_tensor_slices(seeds).map(
        lambda s: color.color_jitter(images, s, 0.1))
    for got, e in zip(ds, eager):
        np.testing.assert_array_equal(got.numpy(), e)
