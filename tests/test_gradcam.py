"""Tests for cutpaste_tf.localization.gradcam: GradCAM w.r.t. the anomaly score."""

from __future__ import annotations

import numpy as np
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
