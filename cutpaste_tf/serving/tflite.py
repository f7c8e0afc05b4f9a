"""TFLite conversion of an :class:`~cutpaste_tf.serving.savedmodel.AnomalyScorer` for edge devices.

The converted model has one signature, ``serve``: float32 ``images`` ``[B, height, width, 3]``
in [0, 1] *already at the model's image size* (resize them with antialiased bilinear
interpolation, as :func:`cutpaste_tf.data.preprocess` does; the model rounds them to the 255
levels itself, as ``preprocess`` does after its resize): TFLite has no builtin kernel for
the antialiased resize, and a model that needs the TensorFlow (Flex) ops runtime is no longer
small. It returns the SavedModel's outputs (``score``, ``is_anomaly``, ``threshold``,
``embedding``, ``image_stats``, and ``anomaly_map`` if the scorer has one) with builtin TFLite ops only, float32.

The conversion goes through ``keras.export.ExportArchive``: TFLite's converter does not freeze
Keras 3 variables reached through a plain ``tf.Module`` (they stay uninitialised resource
variables and the model outputs NaN), but it does freeze those that the archive tracks.
"""

from __future__ import annotations

import inspect
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from cutpaste_tf.data.pipeline import to_float, to_uint8
from cutpaste_tf.serving.savedmodel import AnomalyScorer

SIGNATURE = "serve"


def convert(scorer: AnomalyScorer) -> bytes:
    """The scorer's model-size float path as a TFLite flatbuffer (builtin ops only)."""
    height, width = scorer.image_size
    spec = tf.TensorSpec([None, height, width, 3], tf.float32, name="images")
    size = tf.constant([height, width], tf.int32)

    def serve(images):
        return scorer.score_preprocessed(to_float(to_uint8(images)), size)

    state = tf.Module()  # the non-Keras state: density, threshold, a map module if any
    state.density = scorer.density
    state.threshold = scorer.threshold
    if hasattr(scorer, "map_module"):
        state.map_module = scorer.map_module
    archive = keras.export.ExportArchive()
    archive.track(scorer.model)
    archive.track(state)
    archive.add_endpoint(SIGNATURE, serve, input_signature=[spec])
    folder = tempfile.mkdtemp(prefix="cutpaste-tflite-")
    try:
        kwargs = {"verbose": False} if "verbose" in inspect.signature(
            archive.write_out).parameters else {}
        archive.write_out(folder, **kwargs)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=[SIGNATURE])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return converter.convert()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(model: bytes, images: np.ndarray) -> dict[str, np.ndarray]:
    """Runs a converted model on float images [B, height, width, 3] with ``tf.lite.Interpreter``."""
    interpreter = tf.lite.Interpreter(model_content=model)
    return interpreter.get_signature_runner(SIGNATURE)(images=np.asarray(images, np.float32))
