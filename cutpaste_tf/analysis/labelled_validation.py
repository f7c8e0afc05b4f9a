"""Labelled defects kept apart from the test set: a validation AUROC for choosing settings.

Held-out normal training images (the run's ``val_fraction``) are scored against defect images
that are in neither the training nor the test set, one AUROC per kind of defect and one over all
of them. Settings chosen on this figure never read a test label, and unlike pasted synthetic
shapes (:mod:`cutpaste_tf.analysis.synthetic_benchmark`) the defects are real.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from cutpaste_tf import density as density_lib
from cutpaste_tf.analysis.synthetic_benchmark import score
from cutpaste_tf.data import index
from cutpaste_tf.evaluation import metrics

ALL = "all"  # the key of the AUROC over every kind together
NORMAL = "good"  # a subfolder of normal images (MVTec LOCO's validation/good), never a defect


def defect_kinds(validation_dir: str) -> dict[str, list[str]]:
    """Kind -> image paths, one kind per subfolder of ``validation_dir`` (sorted; a subfolder
    without images, and ``good/``, which holds normal images, are left out). ValueError when
    there is no folder or no defect image."""
    if not tf.io.gfile.isdir(validation_dir):
        raise ValueError(f"validation_dir={validation_dir} is not a folder; it should hold one "
                         "subfolder of labelled defect images per kind")
    kinds = {}
    for name in sorted(n.rstrip("/") for n in tf.io.gfile.listdir(validation_dir)):
        folder = os.path.join(validation_dir, name)
        if name != NORMAL and tf.io.gfile.isdir(folder):
            images = index.list_images(folder)
            if images:
                kinds[name] = images
    if not kinds:
        raise ValueError(f"validation_dir={validation_dir} has no subfolder of defect images "
                         f"(PNG, JPEG or BMP; {NORMAL}/ holds normal ones); put each kind of "
                         "defect in its own subfolder")
    return kinds


def validation_auroc(model: keras.Model, estimator: density_lib.Density, normal: np.ndarray,
                     defects: dict[str, np.ndarray], feature: str,
                     batch_size: int = 32) -> dict[str, float]:
    """AUROC of ``normal`` images [N, H, W, 3] against each kind's defect images, and against
    all of them together (key ``"all"``)."""
    if not len(normal):
        raise ValueError("no normal images to score")
    normal_scores = score(model, estimator, normal, feature, batch_size)
    scores = {kind: score(model, estimator, images, feature, batch_size)
              for kind, images in defects.items()}
    result = {}
    for kind, s in {**scores, ALL: np.concatenate(list(scores.values()))}.items():
        labels = np.r_[np.zeros(len(normal_scores)), np.ones(len(s))]
        result[kind] = metrics.auroc(labels, np.r_[normal_scores, s])
    return result
