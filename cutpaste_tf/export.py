"""SavedModel export for TF Serving: decode-free image input, in-graph preprocessing, raw score.

The exported module holds the Keras model and the density estimator, so it scores by itself.
Its signatures take image batches of any size and resize and normalise them with the same
:func:`cutpaste_tf.data.preprocess` that evaluation uses:

- ``serving_default``: uint8 images ``[B, H, W, 3]`` (0..255);
- ``serve_float``: float32 images ``[B, H, W, 3]`` in [0, 1].

Both return ``score`` (the raw anomaly score, higher = more anomalous) and ``embedding`` (the
feature vector the density scores). A model goes to ``<export_dir>/<name>/<version>/``, the
layout TF Serving watches; it is written under a temporary name and then renamed into place.
"""

from __future__ import annotations

import os
import uuid
from typing import Optional, Sequence

import keras
import tensorflow as tf

from cutpaste_tf import files
from cutpaste_tf.data import preprocess

METADATA_FILE = "cutpaste.json"  # in assets.extra/, which TF Serving ignores


class AnomalyScorer(tf.Module):
    """Image batch -> {score, embedding}; the unit that gets exported."""

    def __init__(self, model: keras.Model, density: tf.Module, image_size: Sequence[int],
                 feature: str = "pooled"):
        super().__init__(name="anomaly_scorer")
        self.model = model
        self.density = density
        self.image_size = tuple(int(s) for s in image_size)
        self.feature = feature
        images = tf.TensorSpec([None, None, None, 3], tf.float32, name="images")
        self.serve_float = tf.function(self.__call__, input_signature=[images])
        images = tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")
        # Scales to [0, 1] and calls serve_float, so the model is traced once, not twice.
        self.serve_uint8 = tf.function(
            lambda images: self.serve_float(tf.cast(images, tf.float32) / 255.0),
            input_signature=[images])

    def __call__(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        x = preprocess(images, self.image_size)
        features = tf.cast(self.model(x, training=False)[self.feature], tf.float32)
        return {"score": self.density.score(features), "embedding": features}


def export(scorer: AnomalyScorer, export_dir: str, name: str, version: int = 1,
           metadata: Optional[dict] = None) -> str:
    """Writes ``scorer`` to ``<export_dir>/<name>/<version>`` atomically; returns that path."""
    if version < 1:
        raise ValueError(f"export version must be a positive integer, got {version}")
    base = os.path.join(export_dir, name)
    final = os.path.join(base, str(version))
    tmp = os.path.join(base, f".tmp-{version}-{uuid.uuid4().hex[:8]}")
    tf.io.gfile.makedirs(base)
    signatures = {
        "serving_default": scorer.serve_uint8.get_concrete_function(),
        "serve_float": scorer.serve_float.get_concrete_function(),
    }
    try:
        tf.saved_model.save(scorer, tmp, signatures=signatures)
        info = {"name": name, "version": version, "image_size": list(scorer.image_size),
                "feature": scorer.feature, **(metadata or {})}
        files.write_json(os.path.join(tmp, "assets.extra", METADATA_FILE), info)
        files.replace_dir(tmp, final)
    finally:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.rmtree(tmp)
    return final


def load(path: str):
    """Loads an exported model; ``load(path).signatures["serving_default"]`` scores images."""
    files.recover_dir(path)  # in case a re-export was killed between its two renames
    if not tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        raise FileNotFoundError(f"no SavedModel at {path!r} (expected {path}/saved_model.pb)")
    return tf.saved_model.load(path)


def read_metadata(path: str) -> dict:
    """The ``cutpaste.json`` written beside an export (image size, feature, config)."""
    return files.read_json(os.path.join(path, "assets.extra", METADATA_FILE))
