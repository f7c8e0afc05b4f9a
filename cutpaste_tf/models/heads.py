"""MLP projection head placed between the pooled backbone features and the classifier."""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from cutpaste_tf.models.norm import BatchNorm


def head_initializer(kind: str) -> keras.initializers.Initializer:
    """"glorot_uniform" (Keras' Dense default) or "torch": PyTorch's nn.Linear default,
    uniform in +-1/sqrt(fan_in)."""
    if kind == "torch":
        return keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform")
    if kind == "glorot_uniform":
        return keras.initializers.GlorotUniform()
    raise ValueError(f"head_init must be 'glorot_uniform' or 'torch', got {kind!r}")


def projection_head(widths: Sequence[int], name: str = "head", batchnorm: bool = True,
                    init: str = "glorot_uniform", embedding: int = 0) -> keras.layers.Layer:
    """Builds Dense(no bias, ``init``: :func:`head_initializer`) -> BN -> ReLU per width, or
    with ``batchnorm=False`` Dense (bias, He initialisation) -> ReLU, then, if ``embedding`` > 0,
    a linear Dense of that width (the authors' DROC head ends in a linear 128 layer); no widths
    and no embedding give an identity layer."""
    widths = tuple(int(w) for w in widths)
    if not widths and not embedding:
        return layers.Identity(name=name)
    head = keras.Sequential(name=name)
    for i, width in enumerate(widths):
        if not batchnorm:
            head.add(layers.Dense(width, kernel_initializer="he_normal", name=f"{name}_dense_{i}"))
        else:
            head.add(layers.Dense(width, use_bias=False, kernel_initializer=head_initializer(init),
                                  name=f"{name}_dense_{i}"))
            head.add(BatchNorm(epsilon=1e-5, momentum=0.9, name=f"{name}_bn_{i}"))
        head.add(layers.ReLU(name=f"{name}_relu_{i}"))
    if embedding:
        head.add(layers.Dense(int(embedding), name=f"{name}_embedding"))
    return head
