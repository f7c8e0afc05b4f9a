"""ResNet-18 backbone built from scratch, layer-for-layer like torchvision's."""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from cutpaste_tf.models.conv import FastConv2D
from cutpaste_tf.models.norm import BatchNorm

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

# PyTorch BatchNorm defaults: eps=1e-5, momentum=0.1 (== Keras momentum 0.9).
_BN_EPSILON = 1e-5
_BN_MOMENTUM = 0.9


def _conv_init() -> keras.initializers.Initializer:
    """He-normal with fan_out, like torchvision's kaiming_normal_(mode="fan_out")."""
    return keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")


def _bn(name: str) -> layers.BatchNormalization:
    """BatchNorm with PyTorch's epsilon/momentum."""
    return BatchNorm(
        epsilon=_BN_EPSILON, momentum=_BN_MOMENTUM, name=name
    )


def _conv(
    x: keras.KerasTensor, filters: int, kernel: int, stride: int, name: str
) -> keras.KerasTensor:
    """Bias-free conv with PyTorch-style symmetric padding of kernel // 2."""
    if stride == 1 and kernel > 1:
        # "same" at stride 1 pads symmetrically, as PyTorch does.
        return FastConv2D(filters, kernel, padding="same", use_bias=False,
                          kernel_initializer=_conv_init(), name=name)(x)
    pad = kernel // 2
    if pad:
        x = layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
    return FastConv2D(
        filters,
        kernel,
        strides=stride,
        padding="valid",
        use_bias=False,
        kernel_initializer=_conv_init(),
        name=name,
    )(x)


def _basic_block(
    x: keras.KerasTensor, filters: int, stride: int, name: str
) -> keras.KerasTensor:
    """torchvision BasicBlock: two 3x3 convs + identity or 1x1 projection shortcut."""
    shortcut = x
    out = _conv(x, filters, 3, stride, f"{name}_conv1")
    out = _bn(f"{name}_bn1")(out)
    out = layers.ReLU(name=f"{name}_relu1")(out)
    out = _conv(out, filters, 3, 1, f"{name}_conv2")
    out = _bn(f"{name}_bn2")(out)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _conv(x, filters, 1, stride, f"{name}_downsample_conv")
        shortcut = _bn(f"{name}_downsample_bn")(shortcut)
    out = layers.Add(name=f"{name}_add")([out, shortcut])
    return layers.ReLU(name=f"{name}_relu2")(out)


def resnet18(
    input_shape: Sequence[int | None] = (None, None, 3), name: str = "resnet18"
) -> keras.Model:
    """ResNet-18 without fc; takes normalised images, returns the stride-32 512-ch map."""
    inputs = keras.Input(shape=tuple(input_shape), name="normalized_image")
    x = _conv(inputs, 64, 7, 2, "conv1")
    x = _bn("bn1")(x)
    x = layers.ReLU(name="relu")(x)
    # Zero padding == PyTorch's -inf padding here because inputs are post-ReLU (>= 0).
    x = layers.ZeroPadding2D(1, name="maxpool_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="valid", name="maxpool")(x)
    for stage, filters in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            stride = 2 if (stage > 1 and block == 0) else 1
            x = _basic_block(x, filters, stride, f"layer{stage}_{block}")
    return keras.Model(inputs, x, name=name)


def imagenet_normalization(name: str = "imagenet_normalization") -> layers.Layer:
    """Fixed (non-trainable) layer mapping [0, 1] RGB images to ImageNet-normalised ones."""
    return layers.Normalization(
        mean=list(IMAGENET_MEAN),
        variance=[s**2 for s in IMAGENET_STD],
        name=name,
    )
