"""The full CutPaste network: normalisation, backbone, pooling, projection head, classifier."""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from cutpaste_tf.models.heads import projection_head

DEFAULT_HEAD_WIDTHS: tuple[int, ...] = (512,) * 8


def _lookup_backbone(backbone: str):
    """Returns the (builder, preprocess) registry entry for `backbone` or raises ValueError."""
    from cutpaste_tf.models import BACKBONES  # late import: registry lives in __init__

    if backbone not in BACKBONES:
        raise ValueError(
            f"Unknown backbone {backbone!r}; valid choices: {sorted(BACKBONES)}"
        )
    return BACKBONES[backbone]


def build_cutpaste_model(
    num_classes: int,
    head_widths: Sequence[int] = DEFAULT_HEAD_WIDTHS,
    backbone: str = "resnet18",
    input_shape: Sequence[int | None] = (None, None, 3),
    name: str = "cutpaste",
) -> keras.Model:
    """Builds the classifier on [0, 1] images; returns a dict of logits/embedding/pooled/feature_map.

    All outputs are cast to float32 so they stay full precision under a
    mixed-precision dtype policy.
    """
    builder, preprocess = _lookup_backbone(backbone)
    images = keras.Input(shape=tuple(input_shape), dtype="float32", name="image")
    x = preprocess()(images)
    feature_map = builder(input_shape=tuple(input_shape), name=backbone)(x)
    pooled = layers.GlobalAveragePooling2D(name="pool")(feature_map)
    embedding = projection_head(head_widths, name="head")(pooled)
    logits = layers.Dense(num_classes, name="classifier")(embedding)

    def to_f32(t: keras.KerasTensor, out_name: str) -> keras.KerasTensor:
        return layers.Activation("linear", dtype="float32", name=out_name)(t)

    outputs = {
        "logits": to_f32(logits, "logits"),
        "embedding": to_f32(embedding, "embedding"),
        "pooled": to_f32(pooled, "pooled"),
        "feature_map": to_f32(feature_map, "feature_map"),
    }
    return keras.Model(images, outputs, name=name)
