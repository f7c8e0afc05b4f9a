"""The backbone registry: a name -> builder, input preprocessing and pretrained weights."""

from __future__ import annotations

from typing import Callable, NamedTuple

import keras

from cutpaste_tf.models.efficientnet import efficientnet_b4, efficientnet_scaling
from cutpaste_tf.models.resnet import imagenet_normalization, resnet18


class BackboneSpec(NamedTuple):
    """Registry entry: `builder(input_shape, name[, weights])`, `preprocess()` -> the layer
    from [0, 1] images to the backbone's input range, and the pretrained weight names that
    `weights` accepts (besides None and local files). A builder returns a model whose output
    is the feature map, or a dict of "feature_map" and further named levels (pooled into
    outputs of the same names)."""

    builder: Callable[..., keras.Model]
    preprocess: Callable[[], keras.layers.Layer]
    pretrained: tuple[str, ...] = ()


BACKBONES: dict[str, BackboneSpec] = {
    "resnet18": BackboneSpec(resnet18, imagenet_normalization),
    "efficientnet_b4": BackboneSpec(efficientnet_b4, efficientnet_scaling, ("imagenet",)),
}
