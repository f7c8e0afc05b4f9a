"""GradCAM of the image-level model with respect to its anomaly score (Sec. 4.2).

The paper localises with the image-level detector by GradCAM (88.3 pixel AUROC). The quantity
explained is the anomaly score, i.e. the density's Mahalanobis distance of the image's
feature vector, not a classifier logit: the classifier separates CutPaste views from normal
ones, while the score is what flags a test image. For the last backbone feature map ``A``
(``[h, w, C]``) and score ``s``: ``alpha_c = mean_ij ds / dA_ij^c`` and
``cam = relu(sum_c alpha_c A^c)``, bilinearly resized to the image. Batched: one
``GradientTape`` over the whole batch (each image's score depends on its own map only, so the
gradient of the summed scores is each image's own gradient).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf


def gradcam_fn(model: keras.Model, density: tf.Module, image_size: Sequence[int],
               feature: str = "pooled"):
    """A compiled ``[B, H, W, 3]`` preprocessed images -> ``([B, H, W] maps, [B] scores)``."""
    if feature not in ("pooled", "embedding"):
        raise ValueError(f"feature must be 'pooled' or 'embedding', got {feature!r}")
    fmap_model = keras.Model(model.inputs, model.get_layer("feature_map").output)
    head = model.get_layer("head") if feature == "embedding" else None
    size = [int(s) for s in image_size]

    def run(images):
        fmap = tf.cast(fmap_model(images, training=False), tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(fmap)
            pooled = tf.reduce_mean(fmap, axis=[1, 2])
            feats = pooled if head is None else tf.cast(head(pooled, training=False), tf.float32)
            scores = density.score(feats)
            total = tf.reduce_sum(scores)
        grads = tape.gradient(total, fmap)
        alpha = tf.reduce_mean(grads, axis=[1, 2], keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(alpha * fmap, axis=-1, keepdims=True))
        cam = tf.image.resize(cam, size, method="bilinear")[..., 0]
        return cam, scores

    spec = tf.TensorSpec([None, *size, 3], tf.float32)
    return tf.function(run, input_signature=[spec])
