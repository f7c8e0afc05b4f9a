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
           forward_input_gradient: Optional[bool] = None) -> tf.Tensor:
    """``tf.nn.conv2d`` (NHWC, square stride), with the input gradient computed as a forward
    convolution when ``forward_input_gradient`` (default: when oneDNN is off)."""
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
