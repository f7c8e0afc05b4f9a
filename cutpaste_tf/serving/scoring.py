"""An exported model loaded back for Python: images in (files, a folder, a glob, or arrays),
scores, decisions and, for a model with an anomaly map (a patch model), the maps out; and
whether the images drifted from the training images (a :class:`DriftWarning` when they did).

It calls the SavedModel's own signatures, the ones TF Serving calls, so its scores are the
served scores: files go through ``serving_default`` (encoded bytes, decoded and resized in the
graph; maps at the model's image size), arrays through ``serve_uint8`` or ``serve_float`` (maps
at the array's size). ``launch.predict`` writes the same scores to CSV and JSON
(:mod:`cutpaste_tf.serving.predictions`).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from cutpaste_tf.serving import predictions, savedmodel

Images = Union[str, Sequence[str], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Scores:
    """What :meth:`Scorer.score` returns, one entry per scored image, in order."""

    scores: np.ndarray  # [N] raw anomaly scores; higher is more anomalous
    is_anomaly: np.ndarray  # [N] bool: score above the threshold
    threshold: Optional[float]  # the threshold decided with (None: the model stores none)
    anomaly_maps: Optional[np.ndarray]  # [N, H, W] for a model with a map, else None
    paths: list[str]  # the scored files (empty for arrays)
    failed: dict[str, str]  # file -> why it could not be read or decoded
    # [N, 4] mean grey, contrast, red and blue cast of each image as the model sees it
    # (cutpaste_tf.ops.shifts.STATISTICS); None for an export from before they were returned.
    image_stats: Optional[np.ndarray] = None
    # These images against the training images the export carries a reference of
    # (cutpaste_tf.evaluation.drift.check; empty without one), and its one-line warning ("").
    drift: dict = dataclasses.field(default_factory=dict)
    drift_warning: str = ""

    def __len__(self) -> int:
        return len(self.scores)


class DriftWarning(UserWarning):
    """The scored images differ from the training images beyond the stated bounds
    (:mod:`cutpaste_tf.evaluation.drift`)."""


class Scorer:
    """An export version folder (``<export_dir>/<category>/<version>``) loaded for scoring."""

    def __init__(self, path: str):
        self.path = path
        self.metadata = savedmodel.read_metadata(path)
        self._model = savedmodel.load(path)

    @property
    def threshold(self) -> Optional[float]:
        """The stored decision threshold (None when the model stores none)."""
        return self.metadata.get("threshold")

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.metadata["image_size"])

    @property
    def has_anomaly_map(self) -> bool:
        return bool(self.metadata.get("anomaly_map"))

    def __repr__(self) -> str:
        return (f"Scorer({self.path!r}: {self.metadata.get('name')}, image size "
                f"{self.image_size}, threshold {self.threshold})")

    def score(self, images: Images, batch_size: int = 16,
              threshold: Optional[float] = None) -> Scores:
        """Scores ``images``: a folder (searched recursively), a glob, an image file or a list
        of them, or an array of images (uint8 in 0..255, or float in [0, 1]; ``[H, W, 3]`` or
        ``[N, H, W, 3]``). ``threshold`` overrides the stored one for the decisions. A file
        that cannot be read or decoded fails alone (``failed``); no file at all raises
        ValueError."""
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if isinstance(images, np.ndarray) or tf.is_tensor(images):
            outputs, paths, failed = self._score_arrays(np.asarray(images), batch_size), [], {}
        else:
            outputs, paths, failed = self._score_files(_files(images), batch_size)
        stored = self.threshold
        cut = threshold if threshold is not None else stored
        scores = np.asarray([o["score"] for o in outputs], np.float32)
        maps = None
        if self.has_anomaly_map and outputs:
            maps = np.stack([o["anomaly_map"] for o in outputs])
        decided = scores > (math.inf if cut is None else cut)
        stats = [o["image_stats"] for o in outputs if "image_stats" in o]
        checked = predictions.drift_summary(
            self.metadata.get("drift_reference"), [{"score": float(v)} for v in scores], stats,
            threshold) if outputs else {}
        if checked.get("drift_warning"):  # never silent: Python's warnings show it once
            warnings.warn(checked["drift_warning"], DriftWarning, stacklevel=2)
        return Scores(scores, decided, cut, maps, paths, failed,
                      np.stack(stats) if len(stats) == len(outputs) and stats else None,
                      checked.get("drift", {}), checked.get("drift_warning", ""))

    def _score_files(self, paths: list[str], batch_size: int
                     ) -> tuple[list[dict], list[str], dict[str, str]]:
        signature = self._model.signatures[savedmodel.BYTES_SIGNATURE]
        outputs, scored, failed = [], [], {}
        for chunk in predictions.batches(paths, batch_size):
            for path, out, error in predictions.score_batch(signature, chunk):
                if out is None:
                    failed[path] = error
                else:
                    outputs.append(out)
                    scored.append(path)
        return outputs, scored, failed

    def _score_arrays(self, images: np.ndarray, batch_size: int) -> list[dict]:
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be [H, W, 3] or [N, H, W, 3], got {images.shape}")
        name = "serve_uint8" if images.dtype == np.uint8 else "serve_float"
        dtype = tf.uint8 if images.dtype == np.uint8 else tf.float32
        signature = self._model.signatures[name]
        outputs = []
        for start in range(0, len(images), batch_size):
            out = signature(images=tf.constant(images[start:start + batch_size], dtype))
            out = {k: v.numpy() for k, v in out.items()}
            outputs += [{k: v[i] for k, v in out.items()} for i in range(len(out["score"]))]
        return outputs


def _files(images: Union[str, Sequence[str]]) -> list[str]:
    """The image files ``images`` names: a folder or glob (sorted), one file, or a list."""
    if isinstance(images, str):
        if tf.io.gfile.exists(images) and not tf.io.gfile.isdir(images):
            return [images]
        found, _ = predictions.find_images(images)
        if not found:
            raise ValueError(f"images={images} matches no image files (a folder, a glob or a "
                             "file)")
        return found
    paths = [str(p) for p in images]
    if not paths:
        raise ValueError("images is empty")
    return paths


def load(model: str, category: Optional[str] = None) -> Scorer:
    """The scorer of the export ``model`` names: an export version folder, a folder of versions
    (the newest), or a model dir (its ``export/<category>``; ``category`` may be left out when
    it holds one)."""
    return Scorer(savedmodel.resolve(model, category))
