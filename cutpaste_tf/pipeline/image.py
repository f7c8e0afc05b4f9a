"""The image-level model's stages of a run (Sec. 3.1): one feature vector per image, one Gaussian
(or KDE) over the training images' features, the image's score under it.

Provides what :mod:`cutpaste_tf.pipeline.runner` asks of a model type (the patch model's are in
:mod:`cutpaste_tf.pipeline.patch`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from cutpaste_tf import config as config_lib
from cutpaste_tf import density as density_lib
from cutpaste_tf import rundir
from cutpaste_tf.config import RunConfig
from cutpaste_tf.data import CategoryData
from cutpaste_tf.evaluation import evaluate, metrics, robustness, transfer
from cutpaste_tf.evaluation import threshold as threshold_lib
from cutpaste_tf.pipeline import build, localize, stress
from cutpaste_tf.serving import savedmodel
from cutpaste_tf.training import learning

DENSITY_FILE = rundir.DENSITY_FILE
EXPORT_METADATA: dict = {}  # what the SavedModel's cutpaste.json adds for this model type


@dataclasses.dataclass
class Fitted:
    """The trained model, its density, and the training images' features it was fitted on
    (un-augmented; with ``density.augment_copies``, ``fit_features`` holds them and the
    jittered copies' as [N, 1 + copies, D])."""

    model: keras.Model
    density: density_lib.Density
    features: np.ndarray
    fit_features: Optional[np.ndarray] = None


def build_model(config: RunConfig, precision: str = "float32",
                pretrained: bool = True) -> keras.Model:
    """The classifier at the training image size."""
    return build.build_model(config, precision, pretrained=pretrained)


def start_line(data: CategoryData, config: RunConfig, val_files: Sequence[str],
               strategy: tf.distribute.Strategy) -> str:
    """What the run prints before training (the runner adds where it computes)."""
    tcfg = config.train
    held = (f" (the dataset's {len(val_files)} validation images set the threshold)"
            if data.val_files else
            f" ({len(val_files)} held out to set the threshold)" if val_files else "")
    stages = (f" ({tcfg.head_steps} head-only, then {tcfg.total_steps - tcfg.head_steps} "
              "all layers)" if tcfg.head_steps else "")
    return (f"[{data.name}] training {tcfg.task} for {tcfg.total_steps} steps{stages} "
            f"on {len(data.train_files)} images{held}")


def fit(model: keras.Model, data: CategoryData, config: RunConfig, out: str) -> Fitted:
    """Fits the density on the training images' features and saves it (``density.npz``)."""
    dcfg = config.density
    size, batch = config.train.image_size, config.eval_batch_size
    features = evaluate.embed(model, data.train_files, size, dcfg.feature, batch)
    stacked = None
    if dcfg.augment_copies:  # the training images and their jittered copies, per image
        copies = evaluate.embed_jittered(model, data.train_files, size, dcfg.feature,
                                         dcfg.augment_copies, dcfg.augment_jitter,
                                         config.train.seed, batch)
        stacked = np.concatenate([features[:, None], copies.transpose(1, 0, 2)], axis=1)
    estimator = evaluate.fit_features_checked(features if stacked is None else stacked, data,
                                              dcfg)
    density_lib.save_density(estimator, os.path.join(out, DENSITY_FILE),
                             metadata={"backbone": config.model.backbone, "feature": dcfg.feature})
    return Fitted(model, estimator, features, stacked)


def threshold(fitted: Fitted, val_files: Sequence[str],
              validation: Optional[tuple[Sequence[str], Sequence[int]]],
              config: RunConfig) -> tuple[threshold_lib.Threshold, dict]:
    """The decision threshold and its ``threshold.json`` record (:func:`set_threshold`)."""
    train = fitted.features if fitted.fit_features is None else fitted.fit_features
    return set_threshold(fitted.model, fitted.density, train, val_files, validation, config)


def set_threshold(model: keras.Model, estimator: density_lib.Density, train_features,
                  val_files: Sequence[str],
                  validation: Optional[tuple[Sequence[str], Sequence[int]]],
                  config: RunConfig) -> tuple[threshold_lib.Threshold, dict]:
    """The decision threshold (see :mod:`cutpaste_tf.evaluation.threshold`) and a record of the
    normal scores it came from, so that ``launch.export --threshold_quantile`` can redo it later:
    the quantile of the held-out images' scores, or of out-of-fold scores of the training
    features without them (``train_features`` [N, D], or [N, copies, D] when the density is
    fitted on augmented copies too: each fold's density on every copy of its images, the
    held-out fold scored un-augmented); the F1 threshold on ``validation`` (files, labels)
    when given."""
    dcfg, size, batch = config.density, config.train.image_size, config.eval_batch_size
    q = config.threshold.quantile
    if val_files:
        normal = evaluate.score_images(model, estimator, val_files, size, dcfg.feature, batch)
        cut = threshold_lib.quantile_threshold(normal, q, "validation_quantile")
    else:
        def fit_fold(x):
            fold = evaluate.fit_features(x, dcfg)
            return lambda y: fold.score(tf.constant(y if y.ndim == 2 else y[:, 0],
                                                    tf.float32)).numpy()

        normal = threshold_lib.out_of_fold_scores(train_features, fit_fold,
                                                  config.threshold.folds, config.train.seed)
        cut = threshold_lib.quantile_threshold(normal, q, "out_of_fold_quantile")
    final, labelled = cut, None
    if validation is not None:
        paths, labels = validation
        scores = evaluate.score_images(model, estimator, paths, size, dcfg.feature, batch)
        final, labelled = threshold_lib.f1_threshold(scores, labels), (paths, labels, scores)
    return final, threshold_lib.record(cut, normal, val_files, final, labelled)


def score(fitted: Fitted, data: CategoryData, config: RunConfig) -> np.ndarray:
    """The test images' anomaly scores."""
    return evaluate.score_images(fitted.model, fitted.density, data.test_files,
                                 config.train.image_size, config.density.feature,
                                 config.eval_batch_size, category=data.name)


def stress_normals(fitted: Fitted, unit: savedmodel.AnomalyScorer, data: CategoryData,
                   config: RunConfig, val_files: Sequence[str]) -> robustness.Normals:
    """The stress test's normals: held-out images, or out-of-fold training images
    (:func:`cutpaste_tf.pipeline.stress.image_normals`)."""
    train = fitted.features if fitted.fit_features is None else fitted.fit_features
    return stress.image_normals(fitted.model, fitted.density, config, data.train_files,
                                val_files, train)


def result_fields(fitted: Fitted, data: CategoryData, config: RunConfig, scores: np.ndarray,
                  cut: threshold_lib.Threshold, val_files: Sequence[str], out: str) -> dict:
    """What an image model's results.json holds beside the fields every run has: the
    test set at the threshold, the training scores' mean and std (what an ensemble
    standardises with), Table 3's features (EfficientNet) and GradCAM localisation."""
    train_scores = fitted.density.score(tf.constant(fitted.features, tf.float32)).numpy()
    result = {
        "num_validation": len(val_files),
        # Reported only: the threshold was set without test labels.
        "test_at_threshold": threshold_lib.decision_metrics(scores, data.test_labels, cut.value),
        "train_score_stats": {"mean": float(train_scores.mean()),
                              "std": float(train_scores.std())},
    }
    if config.model.backbone in config_lib.LEVEL7_BACKBONES:  # both Table 3 features (Sec. 4.3)
        result["transfer"] = {
            "stage": transfer.stage_name(config),
            "feature_auroc": transfer.feature_aurocs(fitted.model, data, config, {
                config.density.feature: metrics.auroc(np.asarray(data.test_labels), scores)})}
    if config.localization.gradcam:  # image model + masks: GradCAM localisation (Sec. 4.2)
        result.update(localize.gradcam_results(fitted.model, fitted.density, data, config, out))
    return result


def scorer(fitted: Fitted, config: RunConfig,
           cut: threshold_lib.Threshold) -> savedmodel.AnomalyScorer:
    """The exported unit: images -> score, decision at ``cut``, embedding."""
    return make_scorer(fitted.model, fitted.density, config, cut.value)


def make_scorer(model: keras.Model, density: density_lib.Density, config: RunConfig,
                value: Optional[float]) -> savedmodel.AnomalyScorer:
    """An :class:`~cutpaste_tf.serving.savedmodel.AnomalyScorer` with threshold ``value``."""
    return savedmodel.AnomalyScorer(model, density, config.train.image_size,
                                    config.density.feature, threshold=value)


def load(config: RunConfig, out: str,
         pretrained: bool = False) -> tuple[keras.Model, density_lib.Density]:
    """The float32 model with the newest checkpoint of the category folder ``out``, and its
    density (checked against the config's backbone and feature)."""
    model = build.restored(build_model(config, pretrained=pretrained), out)
    estimator = density_lib.load_density(os.path.join(out, DENSITY_FILE),
                                         expect={"backbone": config.model.backbone,
                                                 "feature": config.density.feature})
    return model, estimator


def load_scorer(config: RunConfig, out: str, value: float) -> savedmodel.AnomalyScorer:
    """The scorer of a trained category (folder ``out``) with threshold ``value``."""
    return make_scorer(*load(config, out), config, value)


def end_line(name: str, result: dict, cut: threshold_lib.Threshold) -> str:
    """What the run prints when the category is done (AUROCs in percent, as the tables)."""
    return (f"[{name}] image AUROC {100 * result['auroc']:.1f}%"
            + (f", GradCAM ({result['gradcam_layer']}) pixel AUROC "
               f"{100 * result['pixel_auroc']:.1f}%" if "pixel_auroc" in result else "")
            + (f"; {result['pixel_auroc_not_reported']}"
               if "pixel_auroc_not_reported" in result else "")
            + f"; threshold {cut.value:.4g} ({cut.method})"
            + learning.end_note(result.get("learning")))
