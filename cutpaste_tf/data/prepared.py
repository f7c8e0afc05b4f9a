"""Datasets that arrive as arrays (CIFAR-10, ELPV) written once as PNG files.

The pipeline reads image files, so such a dataset is "prepared" once: every image is written as
a PNG into a temporary folder beside ``data_dir``, a manifest (``prepared.json``: counts, split
seed, source) is written last, and the folder is renamed to ``data_dir``. A killed preparation
leaves only the temporary folder, never a half-filled ``data_dir``; the next run starts over.
"""

from __future__ import annotations

import os
import uuid
from typing import Any, Callable

import cv2
import numpy as np
import tensorflow as tf

from cutpaste_tf import files
from cutpaste_tf.data.index import DataError

MANIFEST = "prepared.json"


def encode_png(image: np.ndarray) -> bytes:
    """uint8 [H, W] (grey) or [H, W, 3] (RGB) -> PNG bytes."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (
            image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"expected a uint8 grey or RGB image, got {image.dtype} {image.shape}")
    pixels = image[..., ::-1] if image.ndim == 3 else image  # OpenCV writes BGR.
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(pixels))
    if not ok:
        raise ValueError(f"could not encode a {image.shape} image as PNG")
    return buffer.tobytes()


def write_png(path: str, image: np.ndarray) -> None:
    """Writes one image (inside a temporary folder that is renamed when complete)."""
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(encode_png(image))


def read_manifest(data_dir: str) -> dict[str, Any] | None:
    """The manifest of a prepared ``data_dir``, or None when it has not been prepared."""
    path = os.path.join(data_dir, MANIFEST)
    if not tf.io.gfile.exists(path):
        return None
    return files.read_json(path)


def prepare_once(data_dir: str, settings: dict[str, Any],
                 write: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """Returns the manifest of ``data_dir``, preparing it first if needed.

    ``settings`` (dataset name, split seed, ...) must match those of an existing preparation;
    ``write(tmp_dir)`` fills a temporary folder and returns the counts for the manifest.
    """
    manifest = read_manifest(data_dir)
    if manifest is not None:
        differing = {k: (manifest.get(k), v) for k, v in settings.items() if manifest.get(k) != v}
        if differing:
            detail = ", ".join(f"{k}: prepared {old!r}, asked {new!r}"
                               for k, (old, new) in differing.items())
            raise DataError(f"{data_dir!r} was prepared with other settings ({detail}); use "
                            "another data_dir or delete that folder")
        return manifest
    if tf.io.gfile.exists(data_dir) and tf.io.gfile.listdir(data_dir):
        raise DataError(f"{data_dir!r} exists, is not empty and has no {MANIFEST}: it is not a "
                        f"prepared {settings.get('dataset', 'dataset')} folder; use an empty or "
                        "new data_dir")
    tmp = f"{data_dir.rstrip('/')}.tmp-{uuid.uuid4().hex[:8]}"
    tf.io.gfile.makedirs(tmp)
    try:
        manifest = {**settings, **write(tmp)}
        files.write_json(os.path.join(tmp, MANIFEST), manifest)
        if tf.io.gfile.exists(data_dir):  # the empty folder checked above
            tf.io.gfile.rmtree(data_dir)
        files.move_dir(tmp, data_dir)
    finally:
        if tf.io.gfile.exists(tmp):
            files.remove_dir(tmp)
    return manifest
