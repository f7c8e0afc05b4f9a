"""MLP projection head placed between the pooled backbone features and the classifier."""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from cutpaste_tf.models.norm import BatchNorm


def projection_head(widths: Sequence[int], name: str = "head",
                    batchnorm: bool = True) -> keras.layers.Layer:
    """Builds Dense(no bias) -> BN -> ReLU per width, or with ``batchnorm=False`` Dense (bias,
    He initialisation) -> ReLU; empty widths give an identity layer."""
    widths = tuple(int(w) for w in widths)
    if not widths:
        return layers.Identity(name=name)
    head = keras.Sequential(name=name)
    for i, width in enumerate(widths):
        if not batchnorm:
            head.add(layers.Dense(width, kernel_initializer="he_normal", name=f"{name}_dense_{i}"))
        else:
            head.add(layers.Dense(width, use_bias=False, name=f"{name}_dense_{i}"))
            head.add(BatchNorm(epsilon=1e-5, momentum=0.9, name=f"{name}_bn_{i}"))
        head.add(layers.ReLU(name=f"{name}_relu_{i}"))
    return head
