"""SavedModel export for TF Serving: in-graph decoding and preprocessing, raw score and decision.

The exported module holds the Keras model, the density estimator and the decision threshold, so
it scores by itself. Every signature resizes and normalises with the same
:func:`cutpaste_tf.data.preprocess` (and decodes with the same :func:`cutpaste_tf.data.decode`)
that evaluation uses, so served scores are evaluated scores:

- ``serving_default``: ``image_bytes`` string ``[B]``, encoded PNG / JPEG / BMP files (TF
  Serving's REST API carries them as ``{"b64": ...}``); images in one batch may differ in size;
- ``serve_uint8``: ``images`` uint8 ``[B, H, W, 3]`` (0..255);
- ``serve_float``: ``images`` float32 ``[B, H, W, 3]`` in [0, 1].

Each returns ``score`` (raw anomaly score, higher = more anomalous), ``is_anomaly``
(``score > threshold``), ``threshold`` (repeated per image, so every output has the batch
dimension that TF Serving's row format needs), ``embedding`` (the features the density
scores) and ``image_stats`` ``[B, 4]`` (mean grey, contrast, red and blue cast of the model's
input: :data:`cutpaste_tf.ops.shifts.STATISTICS`), which a client compares with the training
images' in ``cutpaste.json``'s ``drift_reference`` to see a line drift
(:func:`cutpaste_tf.evaluation.drift.check`). A scorer with an anomaly map (a subclass overriding :meth:`AnomalyScorer.anomaly_map`,
or any scorer given ``anomaly_map=fn``) also returns ``anomaly_map`` ``[B, H, W]``: at the
input's resolution for the tensor signatures, at the model's ``image_size`` for encoded images
(whose sizes may differ within a batch).

A model goes to ``<export_dir>/<name>/<version>/``, the layout TF Serving watches; it is
written under a temporary name and then renamed into place.
"""

from __future__ import annotations

import math
import os
import re
import uuid
from typing import Callable, Optional, Sequence

import keras
import tensorflow as tf

from cutpaste_tf import files, release, rundir
from cutpaste_tf.data import decode, preprocess
from cutpaste_tf.ops import shifts

METADATA_FILE = "cutpaste.json"  # in assets.extra/, which TF Serving ignores
SIGNATURES = ("serving_default", "serve_uint8", "serve_float")
BYTES_SIGNATURE = "serving_default"  # encoded image files in, what clients of TF Serving call
BYTES_INPUT = "image_bytes"  # its input: string [B]; the _bytes suffix makes REST take b64

# Preprocessed images [B, h, w, 3] at the model's size -> anomaly map [B, h', w'] (any size).
MapFn = Callable[[tf.Tensor], tf.Tensor]


class AnomalyScorer(tf.Module):
    """Images -> {score, is_anomaly, threshold, embedding[, anomaly_map]}; the exported unit.

    Args:
      model: the CutPaste network (dict outputs).
      density: a fitted density estimator over ``model``'s ``feature`` output.
      image_size: (height, width) the model was trained at.
      feature: the model output the density scores.
      threshold: scores above it are anomalies; ``None`` stores +inf (nothing is flagged).
      anomaly_map: optional ``MapFn``; a ``tf.Module`` (or a bound method of one) is tracked,
        so its variables are saved with the scorer. Subclasses may override
        :meth:`anomaly_map` instead.
    """

    def __init__(self, model: keras.Model, density: tf.Module, image_size: Sequence[int],
                 feature: str = "pooled", threshold: Optional[float] = None,
                 anomaly_map: Optional[MapFn] = None):
        super().__init__(name="anomaly_scorer")
        self.model = model
        self.density = density
        self.image_size = tuple(int(s) for s in image_size)
        self.feature = feature
        value = math.inf if threshold is None else float(threshold)
        self.threshold = tf.Variable(value, dtype=tf.float32, trainable=False, name="threshold")
        self._map_fn = anomaly_map
        owner = getattr(anomaly_map, "__self__", anomaly_map)
        if isinstance(owner, tf.Module):
            self.map_module = owner  # tracked: its variables go into the SavedModel
        floats = tf.TensorSpec([None, None, None, 3], tf.float32, name="images")
        # Every signature goes through this one function, so the model is traced once.
        self._score = tf.function(self.score_preprocessed, input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.float32), tf.TensorSpec([2], tf.int32)])
        self.serve_float = tf.function(self._serve_float, input_signature=[floats])
        uint8s = tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")
        self.serve_uint8 = tf.function(self._serve_uint8, input_signature=[uint8s])
        encoded = tf.TensorSpec([None], tf.string, name=BYTES_INPUT)
        self.serve_bytes = tf.function(self._serve_bytes, input_signature=[encoded])

    @property
    def has_anomaly_map(self) -> bool:
        return self._map_fn is not None or type(self).anomaly_map is not AnomalyScorer.anomaly_map

    def anomaly_map(self, images: tf.Tensor) -> Optional[tf.Tensor]:
        """Preprocessed images [B, h, w, 3] -> map [B, h', w'] (higher = more anomalous), or None.

        Override in a subclass, or pass ``anomaly_map=`` to the constructor.
        """
        return None if self._map_fn is None else self._map_fn(images)

    def score_preprocessed(self, images: tf.Tensor, map_size: tf.Tensor) -> dict[str, tf.Tensor]:
        """Model-size float images [B, h, w, 3] -> outputs; the map is resized to ``map_size``."""
        features = tf.cast(self.model(images, training=False)[self.feature], tf.float32)
        score = self.density.score(features)
        out = {
            "score": score,
            "is_anomaly": score > self.threshold,
            "threshold": tf.fill(tf.shape(score), self.threshold),
            "embedding": features,
            "image_stats": shifts.image_statistics(images),
        }
        heat = self.anomaly_map(images) if self.has_anomaly_map else None
        if heat is not None:
            heat = tf.image.resize(tf.cast(heat, tf.float32)[..., None], map_size,
                                   method="bilinear")
            out["anomaly_map"] = heat[..., 0]
        return out

    def __call__(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        """uint8 or [0, 1] float images [B, H, W, 3] -> outputs (the map at H x W)."""
        return self._score(preprocess(images, self.image_size), tf.shape(images)[1:3])

    def _serve_float(self, images):
        return self(images)

    def _serve_uint8(self, images):
        return self(images)  # preprocess scales uint8 by 1/255, as evaluation does

    def _serve_bytes(self, image_bytes):
        size = self.image_size
        images = tf.map_fn(lambda b: preprocess(decode(b), size), image_bytes,
                           fn_output_signature=tf.TensorSpec([*size, 3], tf.float32))
        return self._score(images, tf.constant(size, tf.int32))


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
        BYTES_SIGNATURE: scorer.serve_bytes.get_concrete_function(),
        "serve_uint8": scorer.serve_uint8.get_concrete_function(),
        "serve_float": scorer.serve_float.get_concrete_function(),
    }
    threshold = float(scorer.threshold.numpy())
    try:
        tf.saved_model.save(saveable(scorer), tmp, signatures=signatures)
        info = {"name": name, "version": version, "image_size": list(scorer.image_size),
                "feature": scorer.feature, "signatures": list(SIGNATURES),
                "anomaly_map": scorer.has_anomaly_map,
                "threshold": threshold if math.isfinite(threshold) else None,
                "cutpaste_tf_version": release.__version__, **(metadata or {})}
        files.write_json(os.path.join(tmp, "assets.extra", METADATA_FILE), info)
        files.replace_dir(tmp, final)
    finally:
        if tf.io.gfile.exists(tmp):
            files.remove_dir(tmp)
    return final


def saveable(scorer: AnomalyScorer) -> tf.Module:
    """What gets saved: the scorer's variables and functions on a plain root object.

    Not the scorer itself: with the Keras 3 model saved as a child object (or its Keras
    variables listed), ``tf.saved_model.load`` works but the session-based loader that TF
    Serving and ``saved_model_cli run`` use restores only about half of the variables ("Could
    not find variable layer4_1_bn1/gamma ..."). The ``tf.Variable``s under the Keras variables,
    listed on the root, restore under both loaders.
    """
    root = tf.__internal__.tracking.AutoTrackable()
    root.model_variables = [_tf_variable(v) for v in scorer.model.variables]
    root.density = scorer.density
    root.threshold = scorer.threshold
    if hasattr(scorer, "map_module"):
        root.map_module = scorer.map_module
    root.serve_bytes = scorer.serve_bytes
    root.serve_uint8 = scorer.serve_uint8
    root.serve_float = scorer.serve_float
    return root


def _tf_variable(variable):
    """The ``tf.Variable`` a Keras 3 variable (TensorFlow backend) holds, or the variable."""
    value = getattr(variable, "value", None)
    return value if isinstance(value, tf.Variable) else variable


def load(path: str):
    """Loads an exported model; ``load(path).signatures["serving_default"]`` scores images."""
    files.recover_dir(path)  # in case a re-export was killed between its two renames
    if not tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        raise FileNotFoundError(f"no SavedModel at {path!r} (expected {path}/saved_model.pb)")
    return tf.saved_model.load(path)


def read_metadata(path: str) -> dict:
    """The ``cutpaste.json`` written beside an export (image size, feature, threshold, config)."""
    return files.read_json(os.path.join(path, "assets.extra", METADATA_FILE))


def versions(base: str) -> list[int]:
    """Version numbers of the complete exports under ``<export_dir>/<name>``, ascending."""
    if not tf.io.gfile.isdir(base):
        return []
    found = []
    for entry in tf.io.gfile.listdir(base):
        entry = entry.rstrip("/")
        if re.fullmatch(r"\d+", entry) and tf.io.gfile.exists(
                os.path.join(base, entry, "saved_model.pb")):
            found.append(int(entry))
    return sorted(found)


def resolve(model: str, category: Optional[str] = None) -> str:
    """The export version folder that ``model`` names: a version folder itself, a folder of
    versions (``<export_dir>/<name>``; the newest is taken) or a model dir (its
    ``export/<category>``; ``category`` may be left out when there is only one)."""
    if tf.io.gfile.exists(os.path.join(model, "saved_model.pb")):
        return model
    numbers = versions(model)
    if numbers:
        return os.path.join(model, str(numbers[-1]))
    root = rundir.default_export_dir(model)
    if not tf.io.gfile.isdir(root):
        raise FileNotFoundError(
            f"{model!r} is neither an export (no saved_model.pb), a folder of export versions, "
            "nor a model dir with an export/ folder")
    names = sorted(n.rstrip("/") for n in tf.io.gfile.listdir(root) if versions(
        os.path.join(root, n.rstrip("/"))))
    if category is None:
        if len(names) != 1:
            raise ValueError(f"{root!r} holds exports of {len(names)} categories "
                             f"({', '.join(names) or 'none'}); choose one with category=<name>")
        category = names[0]
    elif category not in names:
        raise FileNotFoundError(f"no export of category {category!r} under {root!r}; "
                                f"found: {', '.join(names) or 'none'}")
    base = os.path.join(root, category)
    return os.path.join(base, str(versions(base)[-1]))
