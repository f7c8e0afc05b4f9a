"""cutpaste_tf.models.norm.BatchNorm: the fused path gives Keras' batch norm (outputs, moving
statistics, gradients) in training and inference, eagerly and under XLA."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from cutpaste_tf.models.norm import BatchNorm

EPS = 1.001e-5  # the fused op's floor; the reference layer uses it too, so they match closely


def pair(channels: int):
    """Our layer and Keras' own, built with the same random weights and moving statistics, on
    [N, H, W, channels] maps (or [N, -channels] vectors when negative)."""
    ours = BatchNorm(epsilon=EPS, momentum=0.9)
    ref = keras.layers.BatchNormalization(epsilon=EPS, momentum=0.9)
    rng = np.random.default_rng(0)
    for layer in (ours, ref):
        layer.build((None, -channels) if channels < 0 else (None, 5, 6, channels))
    weights = [rng.uniform(0.5, 1.5, abs(channels)), rng.normal(0, 0.2, abs(channels)),
               rng.normal(0, 0.3, abs(channels)), rng.uniform(0.5, 2.0, abs(channels))]
    for layer in (ours, ref):
        layer.set_weights([w.astype("float32") for w in weights])
    return ours, ref


def run(layer, x, training, jit=False):
    """(output, d(sum(output * w))/d(input, gamma, beta)) of one call."""
    def f(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=training)
            loss = tf.reduce_sum(y * y * 0.5 + y)  # a non-uniform output gradient
        return y, tape.gradient(loss, [x, layer.gamma, layer.beta])
    return tf.function(f, jit_compile=True)(x) if jit else f(x)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("jit", [False, True])
def test_fused_path_equals_keras_batch_norm(training, jit):
    ours, ref = pair(7)
    x = tf.random.stateless_normal([4, 5, 6, 7], [1, 2]) * 3.0 + 1.0
    y, grads = run(ours, x, training, jit)
    y_ref, grads_ref = run(ref, x, training)
    np.testing.assert_allclose(y.numpy(), y_ref.numpy(), atol=2e-5)
    for g, g_ref in zip(grads, grads_ref):
        np.testing.assert_allclose(g.numpy(), g_ref.numpy(), rtol=1e-4, atol=1e-4)
    # Training moves the moving statistics as Keras does (biased variance); inference does not.
    np.testing.assert_allclose(ours.moving_mean.numpy(), ref.moving_mean.numpy(), atol=1e-6)
    np.testing.assert_allclose(ours.moving_variance.numpy(), ref.moving_variance.numpy(),
                               rtol=1e-5)
    moved = np.abs(ours.moving_mean.numpy() - pair(7)[0].moving_mean.numpy()).max()
    assert (moved > 1e-3) == training


def test_batch_statistics_normalise_in_training():
    ours, _ = pair(3)
    ours.set_weights([np.ones(3, "f4"), np.zeros(3, "f4"), np.zeros(3, "f4"), np.ones(3, "f4")])
    x = tf.random.stateless_uniform([8, 4, 4, 3], [3, 4], maxval=10.0)
    y = ours(x, training=True).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(0, 1, 2)), 1.0, atol=1e-3)


def test_two_dimensional_inputs_take_keras_path():
    ours, ref = pair(-5)
    x = tf.random.stateless_normal([6, 5], [5, 6])
    for training in (True, False):
        np.testing.assert_array_equal(ours(x, training=training).numpy(),
                                      ref(x, training=training).numpy())


def test_mixed_precision_keeps_the_policy_dtype():
    layer = BatchNorm(dtype="mixed_bfloat16")
    x = tf.cast(tf.random.stateless_normal([2, 3, 3, 4], [7, 8]), tf.bfloat16)
    for training in (True, False):
        y = layer(x, training=training)
        assert y.dtype == tf.bfloat16 and np.all(np.isfinite(tf.cast(y, tf.float32).numpy()))
    assert layer.moving_mean.dtype == "float32"
