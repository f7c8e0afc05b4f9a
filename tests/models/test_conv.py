"""cutpaste_tf.models.conv: the forward-convolution input gradient equals TensorFlow's, for every
kind of convolution the ResNet has; FastConv2D equals keras.layers.Conv2D."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from cutpaste_tf.models import conv


def grads(x, kernel, stride, padding, forward):
    """(output, d loss / d x, d loss / d kernel) for a loss with a non-uniform gradient."""
    with tf.GradientTape() as tape:
        tape.watch([x, kernel])
        if forward is None:
            y = tf.nn.conv2d(x, kernel, strides=stride, padding=padding)
        else:
            y = conv.conv2d(x, kernel, stride, padding, forward_input_gradient=forward)
        loss = tf.reduce_sum(tf.sin(y))
    return (y, *tape.gradient(loss, [x, kernel]))


# (input H, W, kernel, channels in, out, stride, padding): the stem, 3x3 same, the stride-2
# 3x3 and 1x1 shortcut of a ResNet stage (on padded inputs), odd and even sizes.
CASES = [(13, 14, 7, 3, 4, 2, "VALID"), (9, 8, 3, 5, 6, 1, "SAME"), (10, 11, 3, 4, 8, 2, "VALID"),
         (8, 8, 1, 4, 8, 2, "VALID"), (4, 4, 3, 8, 8, 1, "SAME"), (3, 3, 3, 8, 16, 2, "VALID")]


@pytest.mark.parametrize("h,w,k,cin,cout,stride,padding", CASES)
def test_forward_input_gradient_equals_tensorflows(h, w, k, cin, cout, stride, padding):
    x = tf.random.stateless_normal([2, h, w, cin], [1, h])
    kernel = tf.random.stateless_normal([k, k, cin, cout], [2, k])
    ref = grads(x, kernel, stride, padding, forward=None)
    for forward in (True, False):
        out = grads(x, kernel, stride, padding, forward)
        for a, b in zip(out, ref):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)


def test_forward_gradient_is_a_different_graph():
    """The flag really switches paths: only the forward-gradient graph has no
    Conv2DBackpropInput op."""
    x = tf.TensorSpec([1, 6, 6, 2]), tf.TensorSpec([3, 3, 2, 2])

    def ops(forward):
        def f(x, k):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = conv.conv2d(x, k, 1, "SAME", forward_input_gradient=forward)
            return tape.gradient(y, x)
        graph = tf.function(f).get_concrete_function(*x).graph
        return {op.type for op in graph.get_operations()}

    assert "Conv2DBackpropInput" in ops(False) and "Conv2DBackpropInput" not in ops(True)


def test_default_follows_onednn():
    assert isinstance(conv.onednn_enabled(), bool)
    x, k = tf.ones([1, 5, 5, 1]), tf.ones([3, 3, 1, 1])
    np.testing.assert_array_equal(conv.conv2d(x, k, 1, "SAME").numpy(),
                                  tf.nn.conv2d(x, k, 1, "SAME").numpy())


def test_fast_conv2d_equals_keras_conv2d():
    fast = conv.FastConv2D(4, 3, strides=2, padding="valid", use_bias=False)
    plain = keras.layers.Conv2D(4, 3, strides=2, padding="valid", use_bias=False)
    x = tf.random.stateless_normal([2, 9, 9, 3], [5, 6])
    fast.build(x.shape)
    plain.build(x.shape)
    plain.set_weights(fast.get_weights())
    np.testing.assert_allclose(fast(x).numpy(), plain(x).numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="FastConv2D needs"):
        conv.FastConv2D(4, 3, strides=2, padding="same")
