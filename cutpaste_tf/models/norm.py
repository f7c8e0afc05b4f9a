"""Batch normalisation for the ResNet: TensorFlow's fused kernel, moving statistics kept equal
on every replica."""

from __future__ import annotations

import tensorflow as tf
from keras import layers


class BatchNorm(layers.BatchNormalization):
    """``BatchNormalization`` with the same statistics and updates, computed faster and kept
    consistent across replicas.

    - **Fused kernel.** Keras' generic batch norm is a dozen element-wise ops forward and more
      backward. On 4-D channels-last maps this layer calls TensorFlow's fused batch norm
      instead, one op each way: a 3-way ResNet-18 training step at 128x128 on a 2-core CPU took
      about 1.3x less time. The batch mean and the biased batch variance normalise and update
      the moving averages, as in Keras; outputs and gradients are equal within float rounding
      (the fused op's epsilon is at least 1.001e-5, the floor cuDNN needs). Other inputs (the
      head's [batch, features]) and masked calls take Keras' own path.
    - **Replicas.** Keras creates the moving statistics with no cross-replica aggregation, so
      under a ``tf.distribute`` strategy each replica would keep its own (differing) copy and a
      checkpoint would hold only the first replica's. Here every update is the mean of the
      replicas' updates. Training normalises with each replica's own batch statistics, as
      usual; on one device nothing changes.
    """

    def add_weight(self, *args, **kwargs):
        if not kwargs.get("trainable", True):
            kwargs.setdefault("aggregation", "mean")
        return super().add_weight(*args, **kwargs)

    def _fusable(self, inputs, mask) -> bool:
        return (mask is None and len(inputs.shape) == 4 and self.axis in (3, -1)  # Keras 3: an int
                and self.scale and self.center and not self.renorm and not self.synchronized)

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        x = tf.cast(inputs, tf.float32)  # as Keras: statistics in float32 whatever the policy
        gamma, beta = tf.cast(self.gamma, tf.float32), tf.cast(self.beta, tf.float32)
        if training and self.trainable:
            y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, epsilon=self.epsilon, data_format="NHWC", is_training=True)
            count = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), tf.float32)
            # The fused op returns the Bessel-corrected variance; Keras averages the biased one.
            variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
            m = self.momentum
            self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
            self.moving_variance.assign(self.moving_variance * m + variance * (1.0 - m))
        else:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32), epsilon=self.epsilon,
                data_format="NHWC", is_training=False)
        return tf.cast(y, self.compute_dtype)


class InputStandardization(layers.Layer):
    """Per-image intensity standardisation of [0, 1] RGB images: every channel is moved and
    scaled by the same amounts, so that the image's luma has mean :attr:`MEAN` and standard
    deviation :attr:`STD` (no weights; ``epsilon`` keeps a flat image finite). A global
    brightness or contrast change of the capture then leaves the model's input as it was."""

    MEAN, STD = 0.5, 0.2

    def __init__(self, epsilon: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, images):
        x = tf.cast(images, tf.float32)
        luma = 0.2989 * x[..., 0:1] + 0.587 * x[..., 1:2] + 0.114 * x[..., 2:3]
        mean = tf.reduce_mean(luma, axis=[1, 2, 3], keepdims=True)
        std = tf.math.reduce_std(luma, axis=[1, 2, 3], keepdims=True)
        return tf.cast(self.MEAN + (x - mean) * (self.STD / (std + self.epsilon)),
                       self.compute_dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "epsilon": self.epsilon}
