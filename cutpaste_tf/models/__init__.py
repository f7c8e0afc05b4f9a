"""Models: ResNet-18 backbone, projection head and the full CutPaste network."""

from __future__ import annotations

from typing import Callable, NamedTuple

import keras

from cutpaste_tf.models.heads import projection_head
from cutpaste_tf.models.resnet import imagenet_normalization, resnet18


class BackboneSpec(NamedTuple):
    """Registry entry: `builder(input_shape, name)` and `preprocess()` -> [0,1]-to-backbone layer."""

    builder: Callable[..., keras.Model]
    preprocess: Callable[[], keras.layers.Layer]


BACKBONES: dict[str, BackboneSpec] = {
    "resnet18": BackboneSpec(resnet18, imagenet_normalization),
}

from cutpaste_tf.models.cutpaste_net import build_cutpaste_model  # noqa: E402

__all__ = [
    "BACKBONES",
    "BackboneSpec",
    "build_cutpaste_model",
    "imagenet_normalization",
    "projection_head",
    "resnet18",
]
