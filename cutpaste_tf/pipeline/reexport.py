"""Re-export of a finished run without training: a new threshold, a new version, TFLite.

Rebuilds each category's scorer from ``<model_dir>/config.json``, its newest checkpoint and its
fitted density, and exports it with the threshold asked for (see
:func:`cutpaste_tf.evaluation.threshold.from_record`) to the next version, so that a running TF
Serving picks it up. The category's ``threshold.json`` and ``results.json`` are updated (the
run's summary tables: :func:`cutpaste_tf.driver.reexport`).
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

import tensorflow as tf

from cutpaste_tf import files, rundir
from cutpaste_tf.config import RunConfig
from cutpaste_tf.evaluation import evaluate
from cutpaste_tf.evaluation import threshold as threshold_lib
from cutpaste_tf.pipeline import drift_check, runner
from cutpaste_tf.serving import savedmodel, tflite


def reexport_run(model_dir: str, categories: Sequence[str] = (),
                 export_dir: Optional[str] = None, value: Optional[float] = None,
                 quantile: Optional[float] = None, version: Optional[int] = None,
                 to_tflite: bool = False) -> list[str]:
    """Re-exports ``categories`` (all trained ones when empty or ``["all"]``) of ``model_dir``
    into ``export_dir`` (default ``<model_dir>/export``) with threshold ``value``, or the
    ``quantile`` of the stored normal scores, or the stored threshold; at ``version`` (default:
    the next). Returns the export paths."""
    config = rundir.load_run_config(model_dir)
    names = rundir.requested_categories(model_dir, categories,
                                        runner.kind_of(config).DENSITY_FILE)
    export_dir = export_dir or rundir.default_export_dir(model_dir)
    return [reexport_category(model_dir, name, config, export_dir, value, quantile, version,
                              to_tflite) for name in names]


def reexport_category(model_dir: str, category: str, config: RunConfig, export_dir: str,
                      value: Optional[float] = None, quantile: Optional[float] = None,
                      version: Optional[int] = None, to_tflite: bool = False) -> str:
    """Exports one category with the threshold asked for; returns the export path."""
    out = rundir.category_dir(model_dir, category)
    record = rundir.read_threshold(out)
    cut = threshold_lib.from_record(record, value, quantile)
    scorer = runner.kind_of(config).load_scorer(config, out, cut.value)
    if version is None:
        version = next_version(export_dir, category)
    path = runner.export_scorer(scorer, config, cut, export_dir, category, version,
                                drift_check.read_reference(out))
    record["threshold"] = cut.to_dict()
    rundir.write_threshold(out, record)
    update_result(out, cut, path)
    if to_tflite:
        tflite_path = os.path.join(out, rundir.tflite_file(version))
        files.write_bytes(tflite_path, tflite.convert(scorer))
        print(f"[{category}] TFLite: {tflite_path}")
    print(f"[{category}] threshold {cut.value:.6g} ({cut.method}"
          f"{f', quantile {cut.quantile}' if cut.quantile else ''}) -> {path}")
    if cut.shortfall():
        print(f"[{category}] {cut.shortfall()}", file=sys.stderr, flush=True)
    return path


def next_version(export_dir: str, category: str) -> int:
    """One more than the newest export of ``category`` (1 for the first)."""
    existing = savedmodel.versions(os.path.join(export_dir, category))
    return existing[-1] + 1 if existing else 1


def update_result(out: str, cut: threshold_lib.Threshold, export_path: str) -> None:
    """The category's results.json (if there) with the new threshold, export path and test
    metrics at the threshold (from its scores.csv)."""
    result_path = os.path.join(out, rundir.RESULTS_FILE)
    if not tf.io.gfile.exists(result_path):
        return
    result = files.read_json(result_path)
    result["threshold"] = cut.to_dict()
    result["export_path"] = export_path
    scores_path = os.path.join(out, rundir.SCORES_FILE)
    if tf.io.gfile.exists(scores_path):
        _, labels, scores = evaluate.read_scores(scores_path)
        result["test_at_threshold"] = threshold_lib.decision_metrics(
            scores.tolist(), labels.tolist(), cut.value)
    files.write_json(result_path, result)
