"""A run's drift check, after evaluation: do the test normals look or score unlike the
training images, and what would an 8 % darker capture of them do to the AUROC?

Writes ``drift_reference.json`` into the category's folder (the training images' statistics,
the normal reference scores and the threshold: what ``launch.predict`` and a TF Serving client
compare new images with; the SavedModel's ``cutpaste.json`` carries it too) and returns the
result fields ``drift`` and ``simulated_drift``, with a warning line when the test normals
drifted (:mod:`cutpaste_tf.evaluation.drift` states the bounds).
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from cutpaste_tf import files, rundir
from cutpaste_tf.config import RunConfig
from cutpaste_tf.data import CategoryData, eval_dataset
from cutpaste_tf.evaluation import drift, metrics
from cutpaste_tf.evaluation import threshold as threshold_lib
from cutpaste_tf.ops import shifts
from cutpaste_tf.serving import savedmodel

REFERENCE_FILE = rundir.DRIFT_REFERENCE_FILE
# What the reference scores are, by the threshold's method, for the warning's wording.
REFERENCE_WHAT = {"validation_quantile": "held-out training normals",
                  "out_of_fold_quantile": "out-of-fold training scores",
                  "training_quantile": "the training images' own scores"}


def make_reference(data: CategoryData, config: RunConfig, record: dict,
                   cut: threshold_lib.Threshold) -> dict:
    """The drift reference of a trained category: its training images' statistics, the normal
    scores its threshold came from (``threshold.json``'s), the threshold in use."""
    stats = drift.file_statistics(data.train_files, config.train.image_size,
                                  config.eval_batch_size)
    ref = at_threshold(drift.reference(stats, record["normal_scores"]), cut)
    ref["reference_method"] = record["normal_method"]
    return ref


def at_threshold(ref: dict, cut: threshold_lib.Threshold) -> dict:
    """``ref`` for decisions at ``cut`` (a re-export may move the threshold)."""
    quantile = cut.quantile if cut.method.endswith("_quantile") else None
    return drift.with_threshold(ref, cut.value, quantile)


def read_reference(out: str) -> Optional[dict]:
    """The category folder's drift reference, or None (a run from before it was written)."""
    path = os.path.join(out, REFERENCE_FILE)
    return files.read_json(path) if tf.io.gfile.exists(path) else None


def scored_shifted(scorer: savedmodel.AnomalyScorer, paths: Sequence[str], config: RunConfig,
                   shift: shifts.Shift, batch_size: int) -> np.ndarray:
    """Scores of image files under ``shift`` (applied to the model's input, then rounded to
    8 bits as a capture would be)."""
    out = []
    for x in eval_dataset(list(paths), config.train.image_size, batch_size):
        out.append(scorer(shifts.apply_shift(x, shift))["score"].numpy())
    return np.concatenate(out) if out else np.zeros([0])


def check_test_set(data: CategoryData, config: RunConfig, record: dict,
                   cut: threshold_lib.Threshold, scores: np.ndarray,
                   scorer: savedmodel.AnomalyScorer, out: str) -> tuple[dict, str]:
    """(result fields, warning line or "") for a category whose test images scored ``scores``;
    writes the category's drift reference."""
    ref = make_reference(data, config, record, cut)
    files.write_json(os.path.join(out, REFERENCE_FILE), ref)
    labels = np.asarray(data.test_labels)
    normal_paths = [p for p, y in zip(data.test_files, labels) if y == 0]
    stats = drift.file_statistics(normal_paths, config.train.image_size, config.eval_batch_size)
    result = drift.check(stats, scores[labels == 0], ref)
    line = drift.describe(result, "the test normals",
                          REFERENCE_WHAT.get(ref["reference_method"], "the normal reference"))
    if line:
        line = f"warning: {line}; AUROC may measure the drift, not the defects"
    fields = {"drift": {"reference": ref["reference_method"], "test_normals": result,
                        "warning": line}}
    if normal_paths and np.any(labels == 1):
        shifted = scored_shifted(scorer, normal_paths, config, shifts.SIMULATED_DRIFT,
                                 config.eval_batch_size)
        both = np.r_[shifted, scores[labels == 1]]
        fields["simulated_drift"] = {
            "shift": shifts.SIMULATED_DRIFT.name,
            "auroc": metrics.auroc(np.r_[np.zeros(len(shifted)), np.ones(int(labels.sum()))],
                                   both),
            "false_alarm_rate": float(np.mean(shifted > cut.value))}
    return fields, line
