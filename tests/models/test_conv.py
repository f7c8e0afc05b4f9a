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


@pytest.mark.parametrize("h,w,k", [(4, 4, 3), (1, 1, 3), (2, 3, 3), (3, 5, 5), (6, 4, 3)])
def test_tap_products_equal_tensorflows_convolution(h, w, k):
    """Output and both gradients of the tap form equal tf.nn.conv2d's, on maps small enough that
    taps reach the padding (and a 1x1 map, where only the centre tap is left)."""
    x = tf.random.stateless_normal([3, h, w, 5], [3, h])
    kernel = tf.random.stateless_normal([k, k, 5, 7], [4, w])
    ref = grads(x, kernel, 1, "SAME", forward=None)
    with tf.GradientTape() as tape:
        tape.watch([x, kernel])
        y = conv.conv2d(x, kernel, 1, "SAME", taps=True)
        loss = tf.reduce_sum(tf.sin(y))
    out = (y, *tape.gradient(loss, [x, kernel]))
    for a, b in zip(out, ref):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)


def test_tap_share_and_default():
    """The share of real (pixel, tap) pairs, and taps by default only on small CPU maps."""
    assert conv.same_tap_share(4, 4, 3, 3) == pytest.approx(100 / 144)
    assert conv.same_tap_share(1, 1, 3, 3) == pytest.approx(1 / 9)
    assert conv.same_tap_share(8, 8, 3, 3) == pytest.approx((22 / 24) ** 2)
    small, large = tf.zeros([1, 4, 4, 2]), tf.zeros([1, 8, 8, 2])
    kernel = tf.zeros([3, 3, 2, 2])
    cpu = not tf.config.list_logical_devices("GPU")
    assert conv.use_taps(small, kernel, 1, "SAME") == cpu
    assert not conv.use_taps(large, kernel, 1, "SAME")
    assert not conv.use_taps(small, kernel, 2, "SAME")
    assert not conv.use_taps(tf.zeros([1, 4, 4, 2]), tf.zeros([1, 1, 2, 2]), 1, "SAME")
    with pytest.raises(ValueError, match="stride-1 'same'"):
        conv.conv2d(small, kernel, 1, "VALID", taps=True)
    with pytest.raises(ValueError, match="odd kernel and a static map size"):
        conv.conv2d(small, tf.zeros([2, 2, 2, 2]), 1, "SAME", taps=True)


def test_tap_graph_has_no_convolution():
    """The switch really changes the graph: no Conv2D op of any kind on the tap path."""
    spec = tf.TensorSpec([2, 4, 4, 3]), tf.TensorSpec([3, 3, 3, 3])

    def ops(taps):
        def f(x, k):
            with tf.GradientTape() as tape:
                tape.watch([x, k])
                y = conv.conv2d(x, k, 1, "SAME", taps=taps)
            return tape.gradient(y, [x, k])
        graph = tf.function(f).get_concrete_function(*spec).graph
        return {op.type for op in graph.get_operations()}

    assert not any(t.startswith("Conv2D") for t in ops(True))
    assert "Conv2D" in ops(False)


def test_tap_products_in_bfloat16_are_as_close_as_the_convolution():
    """Under mixed_bfloat16 the 16-bit tap products are summed in float32, so the tap form is
    about as close to the float32 result as TensorFlow's own bfloat16 convolution."""
    x = tf.random.stateless_normal([4, 4, 4, 32], [7, 8])
    kernel = tf.random.stateless_normal([3, 3, 32, 16], [9, 10])
    exact = tf.nn.conv2d(x, kernel, 1, "SAME").numpy()
    low = [tf.cast(x, tf.bfloat16), tf.cast(kernel, tf.bfloat16)]
    err_taps = np.abs(tf.cast(conv.conv2d(*low, 1, "SAME", taps=True), tf.float32) - exact).max()
    err_conv = np.abs(tf.cast(conv.conv2d(*low, 1, "SAME", taps=False), tf.float32) - exact).max()
    assert err_taps <= 2 * err_conv + 1e-3
