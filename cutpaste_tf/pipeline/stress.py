"""The drift stress test of a trained category (:mod:`cutpaste_tf.evaluation.robustness`): which
normal images it shifts, how each is scored, which anomalies it ranks them against; writes
``<category>/robustness.json`` (its table and figure: :mod:`cutpaste_tf.reporting.robustness`).

Run after evaluation by :mod:`cutpaste_tf.pipeline.runner` (``--stress_test``, on by default)
and on a finished run by ``launch.robustness``.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from cutpaste_tf import density as density_lib
from cutpaste_tf import files, rundir
from cutpaste_tf.config import RunConfig
from cutpaste_tf.data import eval_dataset
from cutpaste_tf.evaluation import evaluate, robustness
from cutpaste_tf.ops import shifts
from cutpaste_tf.serving import savedmodel

RESULT_FILE = rundir.ROBUSTNESS_FILE


def load_images(paths: Sequence[str], config: RunConfig) -> np.ndarray:
    """Image files as the model sees them: float32 [N, H, W, 3] in [0, 1]."""
    size = config.train.image_size
    if not paths:
        return np.zeros([0, *size, 3], np.float32)
    return np.concatenate([x.numpy() for x in eval_dataset(list(paths), size,
                                                           config.eval_batch_size)])


def image_normals(model: keras.Model, density: density_lib.Density, config: RunConfig,
                  train_files: Sequence[str], val_files: Sequence[str],
                  train_features: Optional[np.ndarray] = None) -> robustness.Normals:
    """The normals of an image model: its held-out images scored by its density; without
    them, its training images, each scored by a density fitted on the other folds' features
    (``train_features`` when the caller has them: [N, D], or [N, copies, D] for a density
    fitted on augmented copies too), as the out-of-fold threshold was set."""
    feature, batch = config.density.feature, config.eval_batch_size

    def scorer(estimator):
        def score(images):
            features = evaluate.embed_images(model, images, feature, batch)
            return estimator.score(tf.constant(features, tf.float32)).numpy()
        return score

    limit = config.robustness.max_images
    if val_files:
        keep = robustness.spread_indices(len(val_files), limit)
        images = load_images([val_files[i] for i in keep], config)
        return robustness.Normals(images, np.zeros(len(images), np.int64), [scorer(density)],
                                  "held-out")
    if train_features is None:
        train_features = evaluate.embed(model, train_files, config.train.image_size, feature,
                                        batch)
    groups = robustness.fold_groups(len(train_files), config.threshold.folds, config.train.seed)
    fns = [scorer(evaluate.fit_features(train_features[groups != k], config.density))
           for k in range(int(groups.max()) + 1)]
    keep = robustness.spread_indices(len(train_files), limit)
    return robustness.Normals(load_images([train_files[i] for i in keep], config), groups[keep],
                              fns, "out-of-fold")


def unit_normals(unit: savedmodel.AnomalyScorer, config: RunConfig,
                 val_files: Sequence[str]) -> robustness.Normals:
    """The held-out normals of any model type, scored by its exported unit (a patch model's
    density has no out-of-fold fit, so it needs held-out images)."""
    if not val_files:
        raise ValueError("the stress test of a patch model needs held-out normal images "
                         "(train with val_fraction > 0)")
    batch = config.eval_batch_size

    def score(images):
        return np.concatenate([unit(tf.constant(images[s:s + batch]))["score"].numpy()
                               for s in range(0, len(images), batch)])

    keep = robustness.spread_indices(len(val_files), config.robustness.max_images)
    images = load_images([val_files[i] for i in keep], config)
    return robustness.Normals(images, np.zeros(len(images), np.int64), [score], "held-out")


def run(normals: robustness.Normals, threshold: float, config: RunConfig, out: str,
        defect_files: Sequence[str] = ()) -> dict:
    """The stress test against ``defect_files`` (labelled defects, as captured) or, without
    them, synthetic anomalies on the clean normals; writes ``robustness.json`` (and the figure)
    into the category folder ``out`` and returns the result."""
    shift_list = shifts.parse_shifts(config.robustness.shifts)
    if defect_files:
        keep = robustness.spread_indices(len(defect_files), config.robustness.max_images)
        anomalies, kind = load_images([defect_files[i] for i in keep], config), "labelled defects"
    else:
        anomalies = robustness.synthetic_anomalies(normals.images, config.train.seed,
                                                   config.eval_batch_size)
        kind = "synthetic anomalies"
    result = robustness.stress_test(normals, anomalies, threshold, shift_list,
                                    config.train.seed, config.eval_batch_size)
    result["anomalies"] = kind
    files.write_json(os.path.join(out, RESULT_FILE), result)
    return result


def read(out: str) -> Optional[dict]:
    """The category folder's stress test, or None."""
    path = os.path.join(out, RESULT_FILE)
    return files.read_json(path) if tf.io.gfile.exists(path) else None


def end_line(result: dict) -> str:
    """What the run prints after the stress test: the worst false-alarm rate under a ±10 %
    lighting shift against the target, and the worst AUROC."""
    if "skipped" in result:
        return f"drift stress test skipped: {result['skipped']}"
    s, parts = result["summary"], []
    if "worst_false_alarm_10" in s:
        parts.append(f"±10% brightness/contrast flags up to {100 * s['worst_false_alarm_10']:.0f}%"
                     f" of normals ({s['worst_false_alarm_10_shift']}; target "
                     f"{100 * robustness.TARGET_FALSE_ALARMS:.0f}%)")
    if "worst_auroc" in s:
        parts.append(f"worst AUROC against {result['anomalies']} {100 * s['worst_auroc']:.1f}% "
                     f"({s['worst_auroc_shift']}, clean {100 * s['clean_auroc']:.1f}%)")
    return "drift stress test: " + ", ".join(parts)
