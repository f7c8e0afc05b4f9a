"""Features of un-augmented images, the density fit on normal training images, and test AUROC."""

from __future__ import annotations

import csv
import io
import weakref
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from cutpaste_tf import density as density_lib
from cutpaste_tf import files
from cutpaste_tf.config import DensityConfig
from cutpaste_tf.data import CategoryData, eval_dataset
from cutpaste_tf.evaluation import metrics
from cutpaste_tf.ops import color


class EvaluationError(ValueError):
    """Features or scores that cannot be used (NaN / Inf, degenerate); names category and stage."""


def _check_finite(features: np.ndarray, paths: Sequence[str], category: str, stage: str) -> None:
    """Raises EvaluationError naming the images whose feature rows hold NaN or Inf."""
    bad = [p for p, row in zip(paths, features) if not np.all(np.isfinite(row))]
    if bad:
        raise EvaluationError(
            f"category {category!r}, {stage}: the features of {len(bad)} of {len(paths)} images "
            f"are NaN or Inf, e.g. {', '.join(bad[:3])}; the model's weights or the images are "
            "broken (a diverged run? check the training loss in TensorBoard)")


def feature_extractor(model: keras.Model, image_size: Sequence[int], feature: str):
    """A compiled function: preprocessed image batch -> the model's ``feature`` output."""
    spec = tf.TensorSpec([None, *image_size, 3], tf.float32)
    return tf.function(lambda x: model(x, training=False)[feature], input_signature=[spec])


def embed(model: keras.Model, paths: Sequence[str], image_size: Sequence[int], feature: str,
          batch_size: int = 32) -> np.ndarray:
    """``feature`` output of ``model`` (inference mode) for each image file, in order: [N, D]."""
    extract = cached_extractor(model, tuple(image_size), feature)
    chunks = [extract(x).numpy() for x in eval_dataset(paths, image_size, batch_size)]
    return np.concatenate(chunks, axis=0)


def embed_jittered(model: keras.Model, paths: Sequence[str], image_size: Sequence[int],
                   feature: str, copies: int, strength: Sequence[float], seed: int = 0,
                   batch_size: int = 32) -> np.ndarray:
    """``feature`` output for ``copies`` colour-jittered versions of each image file (each
    copy its own seeded draw, rounded to 8 bits as a capture would be): ``[copies, N, D]``."""
    extract = cached_extractor(model, tuple(image_size), feature)
    out = [[] for _ in range(copies)]
    for b, x in enumerate(eval_dataset(paths, image_size, batch_size)):
        for c in range(copies):
            jittered = color.color_jitter(x, tf.constant([seed, c * 1_000_003 + b], tf.int64),
                                          tuple(strength))
            out[c].append(extract(tf.round(jittered * 255.0) / 255.0).numpy())
    return np.stack([np.concatenate(chunks) for chunks in out])


def embed_images(model: keras.Model, images: np.ndarray, feature: str,
                 batch_size: int = 32) -> np.ndarray:
    """``feature`` output of ``model`` (inference mode) for preprocessed images already in
    memory, ``[N, H, W, 3]`` -> ``[N, D]``."""
    extract = cached_extractor(model, tuple(images.shape[1:3]), feature)
    return np.concatenate([extract(tf.constant(images[i:i + batch_size])).numpy()
                           for i in range(0, len(images), batch_size)])


_EXTRACTORS: "weakref.WeakKeyDictionary[keras.Model, dict]" = weakref.WeakKeyDictionary()


def cached_extractor(model: keras.Model, image_size: tuple[int, ...], feature: str):
    """One traced extractor per (model, size, feature), so repeated calls do not retrace."""
    cache = _EXTRACTORS.setdefault(model, {})
    key = (image_size, feature)
    if key not in cache:
        cache[key] = feature_extractor(model, image_size, feature)
    return cache[key]


def fit_density(model: keras.Model, data: CategoryData, image_size: Sequence[int],
                config: DensityConfig, batch_size: int = 32) -> density_lib.Density:
    """Fits the density on features of the un-augmented normal training images (never augmented:
    CutPaste views would teach the density that pasted patches are normal)."""
    features = embed(model, data.train_files, image_size, config.feature, batch_size)
    return fit_features_checked(features, data, config)


def fit_features_checked(features: np.ndarray, data: CategoryData,
                         config: DensityConfig) -> density_lib.Density:
    """:func:`fit_features` on the training features of ``data``, with errors that name the
    category, the stage and the images."""
    stage = "density fit on the training images"
    _check_finite(features, data.train_files, data.name, stage)
    try:
        return fit_features(features, config)
    except ValueError as e:
        raise EvaluationError(f"category {data.name!r}, {stage}: {e}") from e


def fit_features(features: np.ndarray, config: DensityConfig) -> density_lib.Density:
    """The density of ``config`` fitted on [N, D] features (or [N, copies, D]: every copy of
    every image, see ``DensityConfig.augment_copies``)."""
    features = np.asarray(features)
    if features.ndim == 3:
        features = features.reshape(-1, features.shape[-1])
    estimator = density_lib.fit_density(config.kind, features,
                                        normalize=config.normalize_features)
    if config.kind == "kde" and config.kde_gamma is not None:
        estimator.gamma.assign(config.kde_gamma)
    return estimator


def score_images(model: keras.Model, estimator: density_lib.Density, paths: Sequence[str],
                 image_size: Sequence[int], feature: str, batch_size: int = 32,
                 category: str = "?") -> np.ndarray:
    """Anomaly scores (higher = more anomalous) of image files."""
    features = embed(model, paths, image_size, feature, batch_size)
    _check_finite(features, paths, category, "scoring the test images")
    return estimator.score(tf.constant(features, tf.float32)).numpy()


def evaluate(scores: np.ndarray, data: CategoryData) -> dict:
    """Image AUROC over all test images and per defect type (its images against all good ones)."""
    labels = np.asarray(data.test_labels)
    defects = np.asarray(data.test_defects)
    if not np.all(np.isfinite(scores)):
        bad = [p for p, s in zip(data.test_files, scores) if not np.isfinite(s)]
        raise EvaluationError(f"category {data.name!r}, AUROC: {len(bad)} test images got "
                              f"non-finite scores, e.g. {bad[:3]}")
    per_defect = {}
    for defect in data.defect_types:
        keep = (labels == 0) | (defects == defect)
        per_defect[defect] = metrics.auroc(labels[keep], scores[keep])
    return {
        "auroc": metrics.auroc(labels, scores),
        "auroc_per_defect": per_defect,
        "num_test_per_defect": {d: int((defects == d).sum()) for d in data.defect_types},
        "num_test_normal": int((labels == 0).sum()),
        "num_test_anomalous": int((labels == 1).sum()),
        "num_train": len(data.train_files),
    }


def write_scores(path: str, data: CategoryData, scores: np.ndarray) -> None:
    """One CSV row per test image: path, label, defect type, score."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["path", "label", "defect", "score"])
    for row in zip(data.test_files, data.test_labels, data.test_defects, scores):
        writer.writerow([row[0], row[1], row[2], f"{float(row[3]):.9g}"])
    files.write_text(path, out.getvalue())


def read_scores(path: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The image paths, labels (1 = defective) and scores of a :func:`write_scores` file, in
    its order."""
    rows = score_rows(path)
    return ([r["path"] for r in rows], np.array([int(r["label"]) for r in rows], np.int32),
            np.array([float(r["score"]) for r in rows], np.float64))


def score_rows(path: str) -> list[dict[str, str]]:
    """The rows of a :func:`write_scores` file, as dicts by column name."""
    with tf.io.gfile.GFile(path) as f:
        return list(csv.DictReader(io.StringIO(f.read())))


def defect_counts(path: str) -> dict[str, int]:
    """The number of defective test images per defect type in a :func:`write_scores` file."""
    counts: dict[str, int] = {}
    for r in score_rows(path):
        if int(r["label"]) == 1:
            counts[r["defect"]] = counts.get(r["defect"], 0) + 1
    return counts
