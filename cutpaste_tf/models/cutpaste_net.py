"""The full CutPaste network: normalisation, backbone, pooling, projection head, classifier."""

from __future__ import annotations

import os
from typing import Optional, Sequence

import keras
from keras import layers

from cutpaste_tf.models.efficientnet import WeightsError
from cutpaste_tf.models.heads import projection_head
from cutpaste_tf.models.norm import InputStandardization
from cutpaste_tf.models.registry import BACKBONES

# One hidden layer: deeper Dense -> BatchNorm -> ReLU heads explode and scramble the gradient
# the backbone gets at initialisation, and stay at chance for hundreds of steps
# (docs/learning.md); --head_widths=512,...,512 (eight) is the authors' DROC head.
DEFAULT_HEAD_WIDTHS: tuple[int, ...] = (512,)


def _lookup_backbone(backbone: str):
    """Returns the (builder, preprocess) registry entry for `backbone` or raises ValueError."""
    if backbone not in BACKBONES:
        raise ValueError(
            f"Unknown backbone {backbone!r}; valid choices: {sorted(BACKBONES)}"
        )
    return BACKBONES[backbone]


def check_backbone_weights(backbone: str, weights: Optional[str]) -> None:
    """Raises WeightsError unless ``weights`` can initialise ``backbone``: None (random), one of
    its pretrained names, or an existing file (a .h5 for a backbone with pretrained weights, a
    .weights.h5 saved from the same backbone otherwise). The one check of ``backbone_weights``,
    cheap enough to run before any training."""
    spec = _lookup_backbone(backbone)
    if weights is None or weights in spec.pretrained:
        return
    if not spec.pretrained and not weights.endswith(".weights.h5"):
        raise WeightsError(f"backbone_weights={weights}: backbone {backbone!r} has no pretrained "
                           "weights; it takes 'none' or a .weights.h5 file saved from a "
                           f"{backbone} backbone (ImageNet weights: backbone=efficientnet_b4)")
    if not weights.endswith(".h5"):
        raise WeightsError(f"backbone_weights={weights}: expected "
                           f"{', '.join(repr(n) for n in spec.pretrained)}, 'none', or a path to "
                           "a .h5 / .weights.h5 file")
    if not os.path.isfile(weights):
        raise WeightsError(f"backbone_weights={weights}: no such file")


def build_backbone(backbone: str, input_shape: Sequence[int | None],
                   weights: Optional[str] = None) -> keras.Model:
    """The registered backbone named ``backbone`` (also the layer's name) with ``weights``:
    None (random), one of its pretrained names, or a local weights file."""
    check_backbone_weights(backbone, weights)
    spec = _lookup_backbone(backbone)
    if weights is None:
        return spec.builder(input_shape=tuple(input_shape), name=backbone)
    if spec.pretrained:  # the builder knows its weight sources
        return spec.builder(input_shape=tuple(input_shape), name=backbone, weights=weights)
    net = spec.builder(input_shape=tuple(input_shape), name=backbone)
    net.load_weights(weights)
    return net


def build_cutpaste_model(
    num_classes: int,
    head_widths: Sequence[int] = DEFAULT_HEAD_WIDTHS,
    backbone: str = "resnet18",
    input_shape: Sequence[int | None] = (None, None, 3),
    name: str = "cutpaste",
    backbone_weights: Optional[str] = None,
    classifier_init: str = "zeros",
    head_batchnorm: bool = True,
    head_init: str = "glorot_uniform",
    head_embedding: int = 0,
    input_standardization: bool = False,
) -> keras.Model:
    """Builds the classifier on [0, 1] images; returns a dict of logits/embedding/pooled/feature_map
    and, for backbones with more levels (EfficientNet's "level7"), each level pooled.
    ``classifier_init`` is the last layer's kernel initializer ("zeros" or "glorot_uniform");
    ``head_batchnorm`` puts BatchNorm in each head layer, ``head_init`` initialises their
    Dense kernels, ``head_embedding`` > 0 ends the head in a linear layer of that width
    (:func:`projection_head`). ``input_standardization`` standardises each image's luma first
    (:class:`~cutpaste_tf.models.norm.InputStandardization`).

    All outputs are cast to float32 so they stay full precision under a
    mixed-precision dtype policy.
    """
    preprocess = _lookup_backbone(backbone).preprocess
    images = keras.Input(shape=tuple(input_shape), dtype="float32", name="image")
    x = InputStandardization(name="input_standardization")(images) if input_standardization \
        else images
    x = preprocess()(x)
    levels = build_backbone(backbone, input_shape, backbone_weights)(x)
    if not isinstance(levels, dict):
        levels = {"feature_map": levels}
    feature_map = levels["feature_map"]
    pooled = layers.GlobalAveragePooling2D(name="pool")(feature_map)
    embedding = projection_head(head_widths, name="head", batchnorm=head_batchnorm,
                                init=head_init, embedding=head_embedding)(pooled)
    # Zero-initialised by default: the first logits are 0 (loss ln V), so the first gradients
    # carry only the proxy task, not a push to shrink random logits (docs/learning.md);
    # "glorot_uniform" is Keras' default, as in the authors' code.
    logits = layers.Dense(num_classes, kernel_initializer=classifier_init,
                          name="classifier")(embedding)

    def to_f32(t: keras.KerasTensor, out_name: str) -> keras.KerasTensor:
        return layers.Activation("linear", dtype="float32", name=out_name)(t)

    outputs = {
        "logits": to_f32(logits, "logits"),
        "embedding": to_f32(embedding, "embedding"),
        "pooled": to_f32(pooled, "pooled"),
        "feature_map": to_f32(feature_map, "feature_map"),
    }
    for level, value in levels.items():
        if level != "feature_map":
            outputs[level] = to_f32(layers.GlobalAveragePooling2D(name=f"{level}_pool")(value),
                                    level)
    return keras.Model(images, outputs, name=name)


def backbone_of(model: keras.Model) -> keras.Model:
    """The backbone sub-model of a CutPaste network (the layer named after a registry entry)."""
    found = [layer for layer in model.layers if layer.name in BACKBONES]
    if len(found) != 1:
        raise ValueError(f"model {model.name!r} has no single registered backbone layer")
    return found[0]
