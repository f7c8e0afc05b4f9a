"""Tests for cutpaste_tf.localization.gradcam: GradCAM w.r.t. the anomaly score."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from cutpaste_tf import density as density_lib
from cutpaste_tf.localization import gradcam
from cutpaste_tf.models import build_cutpaste_model

SIZE = (64, 96)  # non-square: a 2 x 3 feature map


class LinearScore(tf.Module):
    """A stand-in density whose score is w . features, so its gradient is exactly w."""

    def __init__(self, w):
        super().__init__()
        self.w = tf.constant(w, tf.float32)

    def score(self, features):
        return tf.linalg.matvec(features, self.w)


def _model():
    tf.keras.utils.set_random_seed(0)
    return build_cutpaste_model(2, (16,), input_shape=(*SIZE, 3))


def _images(n=3):
    return tf.constant(np.random.default_rng(0).uniform(size=(n, *SIZE, 3)), tf.float32)


def test_gradcam_is_taken_with_respect_to_the_density_score():
    model, images = _model(), _images()
    w = np.random.default_rng(1).normal(size=512)
    cam, scores = gradcam.gradcam_fn(model, LinearScore(w), SIZE)(images)
    fmap = model(images, training=False)["feature_map"].numpy()       # [3, 2, 3, 512]
    alpha = w / (fmap.shape[1] * fmap.shape[2])                       # d(w . mean A)/dA
    expected = np.maximum(np.einsum("bhwc,c->bhw", fmap, alpha), 0.0)[..., None]
    expected = tf.image.resize(expected, SIZE, method="bilinear").numpy()[..., 0]
    np.testing.assert_allclose(cam.numpy(), expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(scores.numpy(), fmap.mean(axis=(1, 2)) @ w, rtol=1e-4)


def test_gradcam_with_a_gde_is_batched_per_image():
    model, images = _model(), _images(4)
    pooled = model(_images(8), training=False)["pooled"].numpy()
    gde = density_lib.fit_density("gde", pooled + np.random.default_rng(2).normal(
        scale=1e-3, size=pooled.shape))
    fn = gradcam.gradcam_fn(model, gde, SIZE)
    cam, scores = fn(images)
    assert cam.shape == (4, *SIZE) and np.all(cam.numpy() >= 0)
    assert np.all(np.isfinite(cam.numpy())) and cam.numpy().max() > 0
    for i in range(4):
        one, score = fn(images[i:i + 1])
        np.testing.assert_allclose(one.numpy()[0], cam.numpy()[i], rtol=1e-3, atol=1e-5)
        np.testing.assert_allclose(score.numpy()[0], scores.numpy()[i], rtol=1e-5)


def test_gradcam_of_an_earlier_stage_is_the_gradient_through_the_later_stages():
    model, images = _model(), _images()
    # Independently: layer3's map as an input of the rest of the backbone, differentiated.
    backbone = model.get_layer("resnet18")
    stage = backbone.get_layer("layer3_1_relu2").output
    upto = keras.Model(backbone.inputs, stage)
    rest = keras.Model(stage, backbone.output)
    a = upto(model.get_layer("imagenet_normalization")(images), training=False)
    assert a.shape == (3, *gradcam.map_size("layer3", SIZE), 256) == (3, 4, 6, 256)
    peaks = []
    for sign in (1.0, -1.0):  # ReLU keeps one sign of the map: one of the two is not all zero
        w = sign * np.random.default_rng(1).normal(size=512)
        cam, scores = gradcam.gradcam_fn(model, LinearScore(w), SIZE, layer="layer3")(images)
        with tf.GradientTape() as tape:
            tape.watch(a)
            s = tf.linalg.matvec(tf.reduce_mean(rest(a, training=False), axis=[1, 2]),
                                 tf.constant(w, tf.float32))
            total = tf.reduce_sum(s)
        alpha = tf.reduce_mean(tape.gradient(total, a), axis=[1, 2], keepdims=True)
        expected = tf.nn.relu(tf.reduce_sum(alpha * a, axis=-1, keepdims=True))
        expected = tf.image.resize(expected, SIZE, method="bilinear").numpy()[..., 0]
        np.testing.assert_allclose(cam.numpy(), expected, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(scores.numpy(), s.numpy(), rtol=1e-4)
        peaks.append(cam.numpy().max())
    assert max(peaks) > 0


@pytest.mark.parametrize("size, layer", [((256, 256), "layer4"), ((128, 128), "layer3"),
                                         ((64, 64), "layer2"), ((64, 96), "layer2"),
                                         ((100, 100), "layer2"), ((32, 48), "layer1")])
def test_auto_picks_the_deepest_stage_with_at_least_8x8(size, layer):
    assert gradcam.choose_layer("auto", size) == layer
    assert min(gradcam.map_size(layer, size)) >= gradcam.MIN_MAP_SIDE
    assert gradcam.too_small(layer, size) is None
    assert gradcam.choose_layer("layer4", size) == "layer4"  # a named stage is kept


@pytest.mark.parametrize("side", [64, 100])
def test_map_sizes_are_the_models(side):
    tf.keras.utils.set_random_seed(0)
    backbone = build_cutpaste_model(2, (16,), input_shape=(side, side, 3)).get_layer("resnet18")
    for name in gradcam.RESNET_STAGES:
        shape = backbone.get_layer(f"{name}_1_relu2").output.shape
        assert tuple(shape[1:3]) == gradcam.map_size(name, (side, side)), name


def test_a_map_under_8x8_says_why_instead_of_a_number():
    assert gradcam.too_small("layer4", (64, 64)) == (
        "pixel AUROC not reported: the GradCAM map (layer4) is 2×2 at 64 px (needs ≥ 8×8; "
        "use --gradcam_layer=layer2 or a larger --image_size)")
    assert gradcam.too_small("layer3", (64, 96)) == (
        "pixel AUROC not reported: the GradCAM map (layer3) is 4×6 at 64×96 px (needs ≥ 8×8; "
        "use --gradcam_layer=layer2 or a larger --image_size)")
    assert gradcam.too_small("layer1", (16, 16)).endswith("(needs ≥ 8×8; use a larger "
                                                          "--image_size)")


def test_other_backbones_use_their_last_map_and_refuse_a_stage():
    assert gradcam.choose_layer("auto", (380, 380), "efficientnet_b4") == gradcam.LAST
    assert gradcam.map_size(gradcam.LAST, (380, 380)) == (12, 12)
    with pytest.raises(ValueError, match="takes only 'auto'"):
        gradcam.choose_layer("layer3", (380, 380), "efficientnet_b4")
    with pytest.raises(ValueError, match="gradcam_layer must be one of"):
        gradcam.choose_layer("layer5", (64, 64))
