"""Conv2D whose input gradient is computed with a forward convolution.

TensorFlow's CPU kernel for the input gradient of a convolution (``Conv2DBackpropInput``) is far
slower than the forward kernel for the deep, small-map layers of a ResNet: for 48 maps of
2x2x512 and a 3x3x512x512 kernel it took 0.68 s against 0.02 s for the equivalent forward
convolution on a 2-core CPU (0.37 s against 0.01 s for the stride-2 256->512 layer), which made a
CPU training step five times slower than it needed to be. The input gradient of a convolution is
itself a convolution: of the output gradient (dilated by the stride and padded to a "full"
convolution) with the kernel flipped in space and transposed in its channel axes. This layer
computes it that way; outputs, weights and gradients equal ``keras.layers.Conv2D``'s, and on
GPU and TPU the forward kernel is as fast as the other.

That slow kernel is TensorFlow's own. With oneDNN's CPU kernels on (TensorFlow's default on
CPUs with AVX-512, and what the launchers turn on everywhere) the native input gradient is
the faster one: the 3-way training step ran 1.11x faster with it at 128x128 and 1.08x at
256x256 on a 2-core AVX-512 CPU. So the forward-convolution gradient is used only where
oneDNN is off (``TF_ENABLE_ONEDNN_OPTS=0``, or an x86 CPU without AVX-512 outside the
launchers).

On small maps a "same" convolution spends much of its work on the zero padding: on a 4x4 map a
3x3 kernel reaches the padding in 44 of the 144 (pixel, tap) pairs, so almost a third of oneDNN's
multiply-adds are of zeros (layer4 of ResNet-18 at 128x128; layers 2-4 of the 32x32 patches of
dense maps). There each tap is one matrix product over the pixels it reaches in the input, for
the output and both gradients (:func:`tap_conv2d`): 1.7x faster than oneDNN's kernels at 4x4x512
on a 2-core CPU, and slower at 8x8x256, so it runs only where at most 3/4 of the pairs are real
(:func:`same_tap_share`), and only on CPU.
"""

from __future__ import annotations

import functools
import os
from typing import Optional

import keras
import tensorflow as tf


@functools.cache
def onednn_enabled() -> bool:
    """Whether TensorFlow runs its oneDNN CPU kernels in this process."""
    try:
        from tensorflow.python.util import _pywrap_util_port
        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):  # a TensorFlow without the query: trust the setting
        return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"


def _input_gradient(dy: tf.Tensor, kernel: tf.Tensor, input_shape: tf.Tensor, stride: int,
                    padding: str) -> tf.Tensor:
    """d(loss)/d(input) of ``tf.nn.conv2d(x, kernel, stride, padding)`` as a forward conv."""
    flipped = tf.transpose(tf.reverse(kernel, axis=[0, 1]), [0, 1, 3, 2])
    if padding == "SAME":  # stride 1, odd kernel: symmetric padding, same-size output.
        return tf.nn.conv2d(dy, flipped, strides=1, padding="SAME")
    kh, kw = kernel.shape[0], kernel.shape[1]
    if stride > 1:  # Put stride - 1 zeros between the output-gradient pixels.
        shape = tf.shape(dy)
        dy = tf.pad(dy[:, :, None, :, None, :],
                    [[0, 0], [0, 0], [0, stride - 1], [0, 0], [0, stride - 1], [0, 0]])
        dy = tf.reshape(dy, [shape[0], shape[1] * stride, shape[2] * stride, shape[3]])
        dy = dy[:, : (shape[1] - 1) * stride + 1, : (shape[2] - 1) * stride + 1]
    # A "full" convolution; input rows the kernel never reached get zero gradient.
    extra_h = input_shape[1] - (tf.shape(dy)[1] + kh - 1)
    extra_w = input_shape[2] - (tf.shape(dy)[2] + kw - 1)
    dy = tf.pad(dy, [[0, 0], [kh - 1, kh - 1 + extra_h], [kw - 1, kw - 1 + extra_w], [0, 0]])
    return tf.nn.conv2d(dy, flipped, strides=1, padding="VALID")


def conv2d(x: tf.Tensor, kernel: tf.Tensor, stride: int, padding: str,
           forward_input_gradient: Optional[bool] = None,
           taps: Optional[bool] = None) -> tf.Tensor:
    """``tf.nn.conv2d`` (NHWC, square stride), with the input gradient computed as a forward
    convolution when ``forward_input_gradient`` (default: when oneDNN is off), and as
    :func:`tap_conv2d` when ``taps`` (default: :func:`use_taps`; stride-1 "same" only)."""
    if taps is None:
        taps = use_taps(x, kernel, stride, padding)
    if taps:
        if padding != "SAME" or stride != 1:
            raise ValueError("tap products compute stride-1 'same' convolutions only")
        return tap_conv2d(x, kernel)
    if forward_input_gradient is None:
        forward_input_gradient = not onednn_enabled()
    if not forward_input_gradient:
        return tf.nn.conv2d(x, kernel, strides=stride, padding=padding)

    @tf.custom_gradient
    def run(x, kernel):
        def grad(dy):
            dx = _input_gradient(dy, kernel, tf.shape(x), stride, padding)
            dkernel = tf.raw_ops.Conv2DBackpropFilter(
                input=x, filter_sizes=tf.shape(kernel), out_backprop=dy,
                strides=[1, stride, stride, 1], padding=padding)
            return dx, dkernel

        return tf.nn.conv2d(x, kernel, strides=stride, padding=padding), grad

    return run(x, kernel)


def same_tap_share(height: int, width: int, kh: int, kw: int) -> float:
    """The share of a stride-1 "same" convolution's (pixel, tap) pairs that read the image and
    not its zero padding."""

    def axis(n: int, k: int) -> float:
        return sum(max(0, n - abs(i - k // 2)) for i in range(k)) / (n * k)

    return axis(height, kh) * axis(width, kw)


TAP_SHARE_LIMIT = 0.75  # 4x4 with a 3x3 kernel: 0.69 (taps faster); 8x8: 0.84 (oneDNN faster)


@functools.cache
def _cpu_only() -> bool:
    """Whether this process sees no GPU or TPU (the tap products are a CPU optimisation)."""
    return not (tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def _taps(height: int, width: int, kh: int, kw: int):
    """For each kernel tap (i, j): its input offset and the output rows and columns it reaches."""
    for i in range(kh):
        for j in range(kw):
            di, dj = i - kh // 2, j - kw // 2
            r0, r1, c0, c1 = max(0, -di), height - max(0, di), max(0, -dj), width - max(0, dj)
            if r1 > r0 and c1 > c0:
                yield i, j, di, dj, (r0, r1, c0, c1)


def _tap_sum(x: tf.Tensor, kernel: tf.Tensor, transpose: bool) -> tf.Tensor:
    """Sum over taps of ``x`` shifted by the tap's offset times its kernel slice: the "same"
    convolution, or with ``transpose`` (each slice swapped for its mirror's, transposed) its
    input gradient."""
    height, width = x.shape[1], x.shape[2]
    kh, kw = kernel.shape[0], kernel.shape[1]
    cin = x.shape[3]
    cout = kernel.shape[2] if transpose else kernel.shape[3]
    batch = tf.shape(x)[0]
    terms = []
    for i, j, di, dj, (r0, r1, c0, c1) in _taps(height, width, kh, kw):
        if transpose:  # the mirrored tap has offset -d: pixel p gets x[p + d] times its slice
            i, j = kh - 1 - i, kw - 1 - j
        part = x[:, r0 + di:r1 + di, c0 + dj:c1 + dj, :]
        y = tf.matmul(tf.reshape(part, [-1, cin]), kernel[i, j], transpose_b=transpose)
        y = tf.reshape(y, [batch, r1 - r0, c1 - c0, cout])
        # 16-bit products are summed in float32, as a convolution kernel accumulates them.
        terms.append(tf.pad(tf.cast(y, tf.float32), [[0, 0], [r0, height - r1], [c0, width - c1],
                                                     [0, 0]]))
    return tf.cast(tf.add_n(terms), x.dtype)


def _tap_filter_gradient(x: tf.Tensor, dy: tf.Tensor, kh: int, kw: int) -> tf.Tensor:
    """d(loss)/d(kernel) of the "same" convolution: one product per tap, over its pixels."""
    height, width, cin, cout = x.shape[1], x.shape[2], x.shape[3], dy.shape[3]
    slices = {}
    for i, j, di, dj, (r0, r1, c0, c1) in _taps(height, width, kh, kw):
        part = tf.reshape(x[:, r0 + di:r1 + di, c0 + dj:c1 + dj, :], [-1, cin])
        slices[i, j] = tf.matmul(part, tf.reshape(dy[:, r0:r1, c0:c1, :], [-1, cout]),
                                 transpose_a=True)
    zero = tf.zeros([cin, cout], dy.dtype)
    return tf.stack([tf.stack([slices.get((i, j), zero) for j in range(kw)])
                     for i in range(kh)])


def tap_conv2d(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """``tf.nn.conv2d(x, kernel, 1, "SAME")`` for an odd kernel and a static map size, computed
    (both ways) as one matrix product per tap over the pixels it reaches."""
    kh, kw = kernel.shape[0], kernel.shape[1]
    if kh % 2 == 0 or kw % 2 == 0 or x.shape[1] is None or x.shape[2] is None:
        # An even kernel pads "same" unevenly; the taps would be offset by half a pixel.
        raise ValueError(f"tap products need an odd kernel and a static map size, got a "
                         f"{kh}x{kw} kernel on {x.shape[1]}x{x.shape[2]} maps")

    @tf.custom_gradient
    def run(x, kernel):
        def grad(dy):
            return _tap_sum(dy, kernel, transpose=True), _tap_filter_gradient(x, dy, kh, kw)

        return _tap_sum(x, kernel, transpose=False), grad

    return run(x, kernel)


def use_taps(x: tf.Tensor, kernel: tf.Tensor, stride: int, padding: str) -> bool:
    """Whether :func:`conv2d` computes this convolution as tap products by default."""
    height, width = x.shape[1], x.shape[2]
    kh, kw = kernel.shape[0], kernel.shape[1]
    return (padding == "SAME" and stride == 1 and height is not None and width is not None
            and kh % 2 == 1 and kw % 2 == 1
            and same_tap_share(height, width, kh, kw) <= TAP_SHARE_LIMIT and _cpu_only())


@keras.saving.register_keras_serializable(package="cutpaste_tf")
class FastConv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` (channels_last, square stride, no dilation or groups) with
    "valid" padding at any stride or "same" padding at stride 1 and an odd kernel."""

    def __init__(self, filters: int, kernel_size: int, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        stride = self.strides[0]
        same_ok = stride == 1 and self.kernel_size[0] % 2 and self.kernel_size[1] % 2
        if (self.strides[1] != stride or tuple(self.dilation_rate) != (1, 1) or self.groups != 1
                or self.data_format != "channels_last"
                or (self.padding == "same" and not same_ok)):
            raise ValueError("FastConv2D needs channels_last, a square stride, no dilation or "
                             "groups, and 'valid' padding or 'same' with stride 1 and an odd kernel")

    def convolution_op(self, inputs, kernel):
        kernel = tf.convert_to_tensor(kernel)
        return conv2d(tf.cast(inputs, kernel.dtype), kernel, self.strides[0],
                      self.padding.upper())
