"""Labelled defects kept apart from the test set: a validation AUROC for choosing settings.

Held-out normal training images (the run's ``val_fraction``) are scored against defect images
that are in neither the training nor the test set, one AUROC per kind of defect and one over all
of them. Settings chosen on this figure never read a test label, and unlike pasted synthetic
shapes (:mod:`cutpaste_tf.analysis.synthetic_benchmark`) the defects are real.
:func:`validate_run` does it for a trained run's categories (``launch.validate``).
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from cutpaste_tf import density as density_lib
from cutpaste_tf import files, rundir
from cutpaste_tf.analysis.synthetic_benchmark import score
from cutpaste_tf.config import RunConfig
from cutpaste_tf.data import index
from cutpaste_tf.evaluation import metrics
from cutpaste_tf.pipeline import trained

RESULTS, TABLE = "validation.json", "validation.md"  # in the model dir
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


def plan(model_dir: str, categories: Sequence[str] = ("all",), data_dir: Optional[str] = None,
         validation_dir: Optional[str] = None
         ) -> tuple[RunConfig, list[tuple[str, list[str], dict[str, list[str]]]]]:
    """Checks every setting and input of :func:`validate_run` and returns (config, [(category,
    held-out normal files, {kind: defect files})]) before any model is loaded."""
    if not model_dir:
        raise ValueError("model_dir is required")
    config = rundir.load_run_config(model_dir)
    names = rundir.requested_categories(model_dir, categories)
    if validation_dir and len(names) > 1:
        raise ValueError(f"validation_dir holds one category's defects, but {len(names)} "
                         f"categories are asked for ({', '.join(names)}); pass category=<name>")
    if not validation_dir and not data_dir:
        raise ValueError("data_dir (whose <category>/validation folders hold the defects) or "
                         "validation_dir is required")
    work = []
    for name in names:
        normal = rundir.held_out_files(rundir.category_dir(model_dir, name))
        folder = validation_dir or os.path.join(data_dir, name, index.VALIDATION_FOLDER)
        work.append((name, normal, defect_kinds(folder)))
    return config, work


def table_markdown(results: dict[str, dict]) -> str:
    """One row per category: the AUROC (%) per kind and over all, with the image counts."""
    kinds = sorted({k for r in results.values() for k in r["auroc"] if k != ALL})
    lines = ["Labelled validation defects against held-out normal training images, AUROC (%)",
             "", "| category | held-out normal | " + " | ".join(
                 f"{k} (n)" for k in kinds) + " | all |",
             "| --- | ---: | " + "---: | " * len(kinds) + "---: |"]
    for name, r in sorted(results.items()):
        cells = [f"{100 * r['auroc'][k]:.1f} ({r['num_defects'][k]})" if k in r["auroc"]
                 else "–" for k in kinds]
        lines.append(f"| {name} | {r['num_normal']} | " + " | ".join(cells)
                     + f" | {100 * r['auroc'][ALL]:.1f} |")
    return "\n".join(lines)


def validate_run(model_dir: str, categories: Sequence[str] = ("all",),
                 data_dir: Optional[str] = None,
                 validation_dir: Optional[str] = None) -> tuple[str, str]:
    """Scores each trained category of ``model_dir``'s held-out normal training images against
    its labelled validation defects (``validation_dir``, else ``<data_dir>/<category>/
    validation``); adds the AUROCs to the run's ``validation.json`` and writes
    ``validation.md``. Returns (Markdown, JSON path)."""
    config, work = plan(model_dir, categories, data_dir, validation_dir)
    path = os.path.join(model_dir, RESULTS)
    results = rundir.read_category_results(path)
    size, batch = config.train.image_size, config.eval_batch_size
    for name, normal_paths, kinds in work:
        model, estimator = trained.load_trained(model_dir, name, config)
        normal = trained.load_images(normal_paths, size, batch)
        defects = {k: trained.load_images(p, size, batch) for k, p in kinds.items()}
        print(f"[{name}] {len(normal)} held-out normal training images against "
              + ", ".join(f"{len(v)} {k}" for k, v in defects.items()))
        aurocs = validation_auroc(model, estimator, normal, defects, config.density.feature,
                                  batch)
        results[name] = {"auroc": aurocs, "num_normal": len(normal),
                         "num_defects": {k: len(v) for k, v in defects.items()},
                         "defect_dirs": {k: os.path.dirname(p[0]) for k, p in kinds.items()}}
    table = table_markdown(results)
    files.write_json(path, {"task": config.train.task, "categories": results})
    files.write_text(os.path.join(model_dir, TABLE), table + "\n")
    return table, path
