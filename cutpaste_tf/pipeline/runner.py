"""One category end to end, for either model type: hold out, train (or resume), fit the density,
set the threshold, score the test images, export, record.

The stages are written once here; what differs between the image model and the patch model
(building the model, fitting its density, scoring, its own result fields, its scorer) comes from
:mod:`cutpaste_tf.pipeline.image` or :mod:`cutpaste_tf.pipeline.patch`, picked by
``config.localization.model_type``. Where each file goes: :mod:`cutpaste_tf.rundir`.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from types import ModuleType
from typing import Optional, Sequence

import keras
import tensorflow as tf

from cutpaste_tf import config as config_lib
from cutpaste_tf import console, devices, files, rundir
from cutpaste_tf.config import RunConfig
from cutpaste_tf.data import CategoryData
from cutpaste_tf.evaluation import evaluate, robustness
from cutpaste_tf.evaluation import threshold as threshold_lib
from cutpaste_tf.pipeline import build, drift_check, failures, image, patch, stress
from cutpaste_tf.serving import savedmodel
from cutpaste_tf.training import learning, train

# config.localization.model_type -> the module with that model type's stages.
KINDS: dict[str, ModuleType] = {"image": image, "patch": patch}


def kind_of(config: RunConfig) -> ModuleType:
    """The stages module of ``config``'s model type."""
    return KINDS[config.localization.model_type]


def run_category(data: CategoryData, config: RunConfig, model_dir: str,
                 export_dir: Optional[str] = None, export_version: int = 1,
                 verbose: bool = True, strategy: Optional[tf.distribute.Strategy] = None,
                 validation: Optional[tuple[Sequence[str], Sequence[int]]] = None,
                 progress_every_s: float = 30.0) -> Optional[dict]:
    """Trains (or resumes) one category's model, fits its density, sets the decision threshold,
    evaluates and exports it.

    ``config.threshold.val_fraction`` of the training images are held out from training and the
    density fit to set the threshold, unless the dataset has its own normal validation images
    (``data.val_files``), which are used instead; ``validation`` (files, labels 0/1), if given,
    sets it by F1 instead (image models). Training runs under ``strategy`` (default: none) in
    ``config.train.precision``; the density, scores and export use a float32 copy of the trained
    weights on this host, on the chief only (other workers return None). Returns the category's
    results (also in ``<model_dir>/<category>/results.json``).

    With ``verbose``, training shows its progress (a plain line every ``progress_every_s``
    seconds where stdout is not a terminal) and every later stage prints a start and an end
    line with its duration (:mod:`cutpaste_tf.console`). An error that leaves a stage is
    marked with its name ("training", "density fit", "threshold", "evaluation", "metrics",
    "export", "results") for :mod:`cutpaste_tf.pipeline.failures`.
    """
    kind = kind_of(config)
    out = rundir.category_dir(model_dir, data.name)
    with failures.stage("training"):
        data, val_files = hold_out(data, config)
        trained = train_model(kind, data, config, out, val_files, verbose, strategy,
                              progress_every_s)
    if trained is None:  # not the chief
        return None
    model, training = trained
    where = f"[{data.name}] "
    with failures.stage("density fit"), console.stage(
            where, f"density fit on {len(data.train_files)} training images", verbose):
        fitted = kind.fit(model, data, config, out)
    with failures.stage("threshold"), console.stage(where, "threshold", verbose):
        cut, record = kind.threshold(fitted, val_files, validation, config)
        rundir.write_threshold(out, record)
    if cut.shortfall():  # a warning about the results, whatever the progress display
        print(f"{where}{cut.shortfall()}", file=sys.stderr, flush=True)
    with failures.stage("evaluation"), console.stage(
            where, f"evaluation on {len(data.test_files)} test images", verbose):
        scores = kind.score(fitted, data, config)
        evaluate.write_scores(os.path.join(out, rundir.SCORES_FILE), data, scores)
    with failures.stage("metrics"), console.stage(where, fields_stage(config), verbose):
        result = {"category": data.name, "kind": data.kind, **evaluate.evaluate(scores, data),
                  "threshold": cut.to_dict(), **training,
                  **kind.result_fields(fitted, data, config, scores, cut, val_files, out)}
    unit = kind.scorer(fitted, config, cut)
    with failures.stage("drift check"), console.stage(where, "drift check", verbose):
        fields, warning = drift_check.check_test_set(data, config, record, cut, scores, unit, out)
        result.update(fields)
    if warning:  # a warning about the results, whatever the progress display
        print(f"{where}{warning}", file=sys.stderr, flush=True)
    if config.robustness.stress_test:
        with failures.stage("stress test"), console.stage(where, "drift stress test", verbose):
            result["robustness"] = stress_test(kind, fitted, unit, data, config, val_files,
                                               validation, cut, out)
        if verbose:
            print(f"{where}{stress.end_line(result['robustness'])}", flush=True)
    if export_dir:
        with failures.stage("export"), console.stage(where, "SavedModel export", verbose):
            result["export_path"] = export_scorer(unit, config, cut, export_dir, data.name,
                                                  export_version, drift_check.read_reference(out))
    with failures.stage("results"):
        files.write_json(os.path.join(out, rundir.RESULTS_FILE), result)
    if verbose:
        print(kind.end_line(data.name, result, cut), flush=True)
    return result


def stress_test(kind: ModuleType, fitted, unit: savedmodel.AnomalyScorer, data: CategoryData,
                config: RunConfig, val_files: Sequence[str],
                validation: Optional[tuple[Sequence[str], Sequence[int]]],
                cut: threshold_lib.Threshold, out: str) -> dict:
    """The drift stress test of the category (:mod:`cutpaste_tf.pipeline.stress`) against its
    labelled validation defects if given, else synthetic anomalies; ``{"skipped": why}`` when
    the model type cannot run it here."""
    try:
        normals = kind.stress_normals(fitted, unit, data, config, val_files)
    except ValueError as e:
        return {"skipped": str(e)}
    if len(normals.images) < robustness.MIN_NORMALS:
        return {"skipped": f"{len(normals.images)} normal image to shift; it needs "
                           f"{robustness.MIN_NORMALS} or more"}
    defects = [p for p, y in zip(*validation) if y == 1] if validation else []
    return stress.run(normals, cut.value, config, out, defects)


def fields_stage(config: RunConfig) -> str:
    """The name of the stage that computes the model type's own result fields."""
    if config.localization.model_type == "patch":
        return "pixel metrics and heatmaps"
    return "GradCAM localisation and metrics" if config.localization.gradcam else "metrics"


def hold_out(data: CategoryData, config: RunConfig) -> tuple[CategoryData, tuple[str, ...]]:
    """``data`` without the images held out to set the threshold, and those images (the
    dataset's own normal validation images when it has them)."""
    train_files, val_files = threshold_lib.split_holdout(
        data.train_files, config.threshold.val_fraction, config.train.seed,
        given=data.val_files)
    return dataclasses.replace(data, train_files=train_files), val_files


def train_model(kind: ModuleType, data: CategoryData, config: RunConfig, out: str,
                val_files: Sequence[str], verbose: bool,
                strategy: Optional[tf.distribute.Strategy], progress_every_s: float = 30.0
                ) -> Optional[tuple[keras.Model, dict]]:
    """Trains (or resumes) the model under ``strategy``; on the chief, returns the float32,
    undistributed model that is evaluated and exported, and the training's result fields."""
    tcfg = config.train
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = kind.build_model(config, tcfg.precision)
    batches = build.training_batches(data, config, strategy, train.restore_step(out))
    if verbose and train.is_chief(strategy):
        print(f"{kind.start_line(data, config, val_files, strategy)}; "
              f"{compute_phrase(config, strategy)}", flush=True)
    tic = time.perf_counter()
    last = train.train(model, batches, tcfg, out, verbose=verbose, strategy=strategy,
                       progress_every_s=progress_every_s)
    seconds = time.perf_counter() - tic
    if not train.is_chief(strategy):
        return None
    if verbose:
        print(f"[{data.name}] training: done in {console.duration(seconds)}", flush=True)
    if strategy is not tf.distribute.get_strategy() or tcfg.precision != "float32":
        model = kind.build_model(config, pretrained=False)  # weights from the checkpoint
        train.restore_weights(model, out)
    return model, {
        "train_steps": tcfg.total_steps,
        "train_seconds_this_run": round(seconds, 1),
        "final_train_metrics": last,
        # Whether the proxy task left chance (None for a run too short to judge).
        "learning": learning.verdict(out, tcfg.total_steps, tcfg.num_classes),
    }


def compute_phrase(config: RunConfig, strategy: tf.distribute.Strategy) -> str:
    """Where and how training computes, for the start line: the devices (so that a run that
    fell back to the CPU says so), the replicas, the precision and whether XLA compiles the
    step, e.g. ``CPU (AMD EPYC, 2 cores), 1 replica, float32, XLA off``."""
    replicas = strategy.num_replicas_in_sync
    return (f"{devices.device_summary(strategy)}, {replicas} "
            f"replica{'s' if replicas != 1 else ''}, {config.train.precision}, "
            f"XLA {'on' if config.train.jit_compile else 'off'}")


def export_scorer(scorer: savedmodel.AnomalyScorer, config: RunConfig,
                  cut: threshold_lib.Threshold, export_dir: str, category: str,
                  version: int, drift_reference: Optional[dict] = None) -> str:
    """Writes the SavedModel ``<export_dir>/<category>/<version>`` with the run's config, the
    threshold's record and the drift reference (at this threshold) in its ``cutpaste.json``;
    returns its path."""
    metadata = {"config": config_lib.to_dict(config), **kind_of(config).EXPORT_METADATA,
                "threshold_info": cut.to_dict()}
    if drift_reference is not None:
        metadata["drift_reference"] = drift_check.at_threshold(drift_reference, cut)
    return savedmodel.export(scorer, export_dir, category, version, metadata=metadata)
