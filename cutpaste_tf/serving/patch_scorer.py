"""The patch model as a SavedModel: images -> image score (the maximum of the patch score map,
Sec. 2.4), decision, and the anomaly map at the input's resolution.

A subclass of :class:`cutpaste_tf.serving.savedmodel.AnomalyScorer`: the same signatures (encoded images,
uint8 and float tensors), the same in-graph decoding and preprocessing, the same threshold and
TF Serving layout, written by the same :func:`cutpaste_tf.serving.savedmodel.export`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import keras
import tensorflow as tf

from cutpaste_tf.localization import dense, upsample
from cutpaste_tf.localization.density import DenseDensity
from cutpaste_tf.serving import savedmodel


class PatchScorer(savedmodel.AnomalyScorer):
    """Images ``[B, H, W, 3]`` -> ``score`` ``[B]``, ``is_anomaly``, ``threshold``,
    ``anomaly_map`` ``[B, H, W]`` and ``score_map`` ``[B, rows, cols]`` (per-patch scores)."""

    def __init__(self, model: keras.Model, density: DenseDensity, image_size: Sequence[int],
                 patch_size: int, stride: int, sigma: float, feature: str = "pooled",
                 chunk_size: int = 512, threshold: Optional[float] = None):
        super().__init__(model, density, image_size, feature, threshold)
        self.patch_size, self.stride, self.sigma = int(patch_size), int(stride), float(sigma)
        self.chunk_size = int(chunk_size)

    def maps(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Preprocessed images at ``image_size`` -> (score map, upsampled map at image_size)."""
        feats = dense.dense_features(dense.model_embedder(self.model, self.feature), x,
                                     self.patch_size, self.stride, self.chunk_size)
        score_map = self.density.score_map(feats)
        full = upsample.upsample(score_map, self.image_size, self.patch_size, self.stride,
                                 self.sigma)
        return score_map, full

    def anomaly_map(self, images: tf.Tensor) -> tf.Tensor:
        return self.maps(images)[1]

    def score_preprocessed(self, images: tf.Tensor, map_size: tf.Tensor) -> dict[str, tf.Tensor]:
        score_map, full = self.maps(images)
        score = tf.reduce_max(score_map, axis=[1, 2])
        heat = tf.image.resize(full[..., None], map_size, method="bilinear")[..., 0]
        return {
            "score": score,
            "is_anomaly": score > self.threshold,
            "threshold": tf.fill(tf.shape(score), self.threshold),
            "anomaly_map": heat,
            "score_map": score_map,
        }
