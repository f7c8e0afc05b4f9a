"""The patch model as a SavedModel: image batch -> anomaly map at the input's resolution and
the image score (the maximum of the patch score map, Sec. 2.4).

Written with :func:`cutpaste_tf.export.export`, like the image-level scorer: same signatures
(``serving_default`` for uint8 images, ``serve_float`` for float images in [0, 1]), same
in-graph preprocessing, same TF Serving layout.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from cutpaste_tf.data import preprocess
from cutpaste_tf.localization import dense, upsample
from cutpaste_tf.localization.density import DenseDensity


class PatchScorer(tf.Module):
    """Images ``[B, H, W, 3]`` (any H, W) -> ``score`` ``[B]``, ``anomaly_map`` ``[B, H, W]``
    and ``score_map`` ``[B, rows, cols]`` (the per-patch scores)."""

    def __init__(self, model: keras.Model, density: DenseDensity, image_size: Sequence[int],
                 patch_size: int, stride: int, sigma: float, feature: str = "pooled",
                 chunk_size: int = 512):
        super().__init__(name="patch_scorer")
        self.model = model
        self.density = density
        self.image_size = tuple(int(s) for s in image_size)
        self.feature = feature
        self.patch_size, self.stride, self.sigma = int(patch_size), int(stride), float(sigma)
        self.chunk_size = int(chunk_size)
        images = tf.TensorSpec([None, None, None, 3], tf.float32, name="images")
        self.serve_float = tf.function(self.__call__, input_signature=[images])
        images = tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")
        self.serve_uint8 = tf.function(
            lambda images: self.serve_float(tf.cast(images, tf.float32) / 255.0),
            input_signature=[images])

    def maps(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Preprocessed images at ``image_size`` -> (score map, upsampled map at image_size)."""
        feats = dense.dense_features(dense.model_embedder(self.model, self.feature), x,
                                     self.patch_size, self.stride, self.chunk_size)
        score_map = self.density.score_map(feats)
        full = upsample.upsample(score_map, self.image_size, self.patch_size, self.stride,
                                 self.sigma)
        return score_map, full

    def __call__(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        x = preprocess(images, self.image_size)
        score_map, full = self.maps(x)
        anomaly_map = tf.image.resize(full[..., None], tf.shape(images)[1:3],
                                      method="bilinear")[..., 0]
        return {"score": tf.reduce_max(score_map, axis=[1, 2]), "anomaly_map": anomaly_map,
                "score_map": score_map}
