"""GradCAM of the image-level model with respect to its anomaly score (Sec. 4.2).

The paper localises with the image-level detector by GradCAM (88.3 pixel AUROC). The quantity
explained is the anomaly score, i.e. the density's Mahalanobis distance of the image's
feature vector, not a classifier logit: the classifier separates CutPaste views from normal
ones, while the score is what flags a test image. For a backbone feature map ``A``
(``[h, w, C]``) and score ``s``: ``alpha_c = mean_ij ds / dA_ij^c`` and
``cam = relu(sum_c alpha_c A^c)``, bilinearly resized to the image. Batched: one
``GradientTape`` over the whole batch (each image's score depends on its own map only, so the
gradient of the summed scores is each image's own gradient).

Which map: a ResNet-18 stage (``layer1`` .. ``layer4``, strides 4, 8, 16, 32). ``auto`` picks
the deepest stage whose map is at least ``MIN_MAP_SIDE`` (8) cells on each side, the size of the
paper's map (``layer4`` at 256 px): ``layer3`` at 128 px, ``layer2`` at 64 px. A map smaller
than that has too few cells to follow a defect (at 64 px ``layer4`` is 2x2 and gave pixel AUROC
0.50-0.51 on testdata), so the runner reports no pixel metrics for it
(:func:`too_small`). Other backbones use their last feature map (``auto`` only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional

import keras
import tensorflow as tf

from cutpaste_tf.config import GRADCAM_LAYERS

# ResNet-18 stages and their strides; the map of a stage is ceil(side / stride) cells a side.
RESNET_STAGES: dict[str, int] = {"layer1": 4, "layer2": 8, "layer3": 16, "layer4": 32}
LAYERS: tuple[str, ...] = GRADCAM_LAYERS  # "auto" and the stages
LAST = "feature_map"  # the last map of a backbone other than ResNet-18 (stride 32)
MIN_MAP_SIDE = 8


def map_size(layer: str, image_size: Sequence[int]) -> tuple[int, int]:
    """(rows, cols) of the map of ``layer`` (a ResNet-18 stage or ``LAST``) at ``image_size``."""
    stride = RESNET_STAGES.get(layer, 32)
    return tuple(math.ceil(int(s) / stride) for s in image_size)


def choose_layer(layer: str, image_size: Sequence[int], backbone: str = "resnet18") -> str:
    """The map GradCAM uses: ``layer`` itself, or for ``auto`` the deepest ResNet-18 stage whose
    map is at least ``MIN_MAP_SIDE`` a side (``layer1`` if none is); ``LAST`` for other
    backbones."""
    if layer not in LAYERS:
        raise ValueError(f"gradcam_layer must be one of {LAYERS}, got {layer!r}")
    if backbone != "resnet18":
        if layer != "auto":
            raise ValueError(f"gradcam_layer={layer!r} names a ResNet-18 stage; backbone "
                             f"{backbone!r} takes only 'auto' (its last feature map)")
        return LAST
    if layer != "auto":
        return layer
    fits = [name for name in RESNET_STAGES if min(map_size(name, image_size)) >= MIN_MAP_SIDE]
    return fits[-1] if fits else "layer1"


def too_small(layer: str, image_size: Sequence[int], backbone: str = "resnet18"
              ) -> Optional[str]:
    """None when the map of ``layer`` is at least ``MIN_MAP_SIDE`` a side; otherwise why no
    pixel AUROC is reported, and what would give one."""
    rows, cols = map_size(layer, image_size)
    if min(rows, cols) >= MIN_MAP_SIDE:
        return None
    h, w = (int(s) for s in image_size)
    auto = choose_layer("auto", image_size, backbone)
    fix = (f"use --gradcam_layer={auto} or a larger --image_size"
           if auto != layer and min(map_size(auto, image_size)) >= MIN_MAP_SIDE
           else "use a larger --image_size")
    return (f"pixel AUROC not reported: the GradCAM map ({layer}) is {rows}×{cols} at "
            f"{h if h == w else f'{h}×{w}'} px (needs ≥ {MIN_MAP_SIDE}×{MIN_MAP_SIDE}; {fix})")


def _stage_model(model: keras.Model, layer: str) -> keras.Model:
    """Normalised images -> [the stage's map, the last feature map] of the ResNet-18 backbone."""
    backbone = model.get_layer("resnet18")
    stage = backbone.get_layer(f"{layer}_1_relu2").output
    return keras.Model(backbone.inputs, [stage, backbone.output])


def gradcam_fn(model: keras.Model, density: tf.Module, image_size: Sequence[int],
               feature: str = "pooled", layer: str = "layer4"):
    """A compiled ``[B, H, W, 3]`` preprocessed images -> ``([B, H, W] maps, [B] scores)``,
    GradCAM of the map of ``layer`` (a ResNet-18 stage, or ``LAST``: see
    :func:`choose_layer`)."""
    if feature not in ("pooled", "embedding"):
        raise ValueError(f"feature must be 'pooled' or 'embedding', got {feature!r}")
    if layer not in (*RESNET_STAGES, LAST):
        raise ValueError(f"layer must be one of {(*RESNET_STAGES, LAST)}, got {layer!r}")
    last = layer in ("layer4", LAST)
    if last:
        fmap_model = keras.Model(model.inputs, model.get_layer("feature_map").output)
    else:
        normalize = model.get_layer("imagenet_normalization")
        stages = _stage_model(model, layer)
    head = model.get_layer("head") if feature == "embedding" else None
    size = [int(s) for s in image_size]

    def run(images):
        # The last map is computed outside the tape; an earlier stage's map inside it, since
        # the score depends on it through the later stages.
        fmap = None if not last else tf.cast(fmap_model(images, training=False), tf.float32)
        with tf.GradientTape() as tape:
            if last:
                tape.watch(fmap)
                target = fmap
            else:
                target, fmap = stages(normalize(images), training=False)
                fmap = tf.cast(fmap, tf.float32)
            pooled = tf.reduce_mean(fmap, axis=[1, 2])
            feats = pooled if head is None else tf.cast(head(pooled, training=False), tf.float32)
            scores = density.score(feats)
            total = tf.reduce_sum(scores)
        grads = tf.cast(tape.gradient(total, target), tf.float32)
        fmap = tf.cast(target, tf.float32)
        alpha = tf.reduce_mean(grads, axis=[1, 2], keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(alpha * fmap, axis=-1, keepdims=True))
        cam = tf.image.resize(cam, size, method="bilinear")[..., 0]
        return cam, scores

    spec = tf.TensorSpec([None, *size, 3], tf.float32)
    return tf.function(run, input_signature=[spec])
