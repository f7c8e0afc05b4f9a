"""One category end to end: train -> density -> evaluate -> export, and the run's summary files.

Layout of a model directory::

    <model_dir>/config.json            the resolved RunConfig
    <model_dir>/results.json, results.md
    <model_dir>/<category>/checkpoints/, logs/train/
    <model_dir>/<category>/density.npz, scores.csv, results.json
    <export_dir>/<category>/<version>/  SavedModel (export_dir defaults to <model_dir>/export)
"""

from __future__ import annotations

import json
import os
import time
from typing import Optional

import keras
import tensorflow as tf

from cutpaste_tf import config as config_lib
from cutpaste_tf import density as density_lib
from cutpaste_tf import evaluate, export, files, metrics, train
from cutpaste_tf.config import RunConfig
from cutpaste_tf.data import CategoryData, train_dataset
from cutpaste_tf.localization import runner as localization_runner
from cutpaste_tf.models import build_cutpaste_model

CONFIG_FILE = "config.json"


def build_model(config: RunConfig) -> keras.Model:
    """The classifier for ``config``, with weights initialised from ``config.train.seed``."""
    keras.utils.set_random_seed(config.train.seed)
    height, width = config.train.image_size
    return build_cutpaste_model(config.train.num_classes, config.model.head_widths,
                                config.model.backbone, input_shape=(height, width, 3))


def run_category(data: CategoryData, config: RunConfig, model_dir: str,
                 export_dir: Optional[str] = None, export_version: int = 1,
                 verbose: bool = True) -> dict:
    """Trains (or resumes) one category's model, fits its density, evaluates and exports it.

    Returns the category's results (also written to ``<model_dir>/<category>/results.json``).
    Patch models (``config.localization.model_type == "patch"``) go to
    :func:`cutpaste_tf.localization.runner.run_patch_category`.
    """
    if config.localization.model_type == "patch":
        return localization_runner.run_patch_category(data, config, model_dir, export_dir,
                                                      export_version, verbose)
    out = os.path.join(model_dir, data.name)
    tcfg = config.train
    model = build_model(config)
    start = train.restore_step(out)
    batches = iter(train_dataset(data.train_files, tcfg.image_size, tcfg.task, tcfg.batch_size,
                                 tcfg.seed, tcfg.augment, start_step=start))
    tic = time.perf_counter()
    if verbose:
        print(f"[{data.name}] training {tcfg.task} for {tcfg.total_steps} steps "
              f"on {len(data.train_files)} images")
    last = train.train(model, batches, tcfg, out, verbose=verbose)
    train_seconds = time.perf_counter() - tic

    dcfg, size, batch = config.density, tcfg.image_size, config.eval_batch_size
    estimator = evaluate.fit_density(model, data, size, dcfg, batch)
    density_lib.save_density(estimator, os.path.join(out, "density.npz"))
    scores = evaluate.score_images(model, estimator, data.test_files, size, dcfg.feature, batch)
    evaluate.write_scores(os.path.join(out, "scores.csv"), data, scores)
    result = {
        "category": data.name,
        "kind": data.kind,
        **evaluate.evaluate(scores, data),
        "train_steps": tcfg.total_steps,
        "train_seconds_this_run": round(train_seconds, 1),
        "final_train_metrics": last,
    }
    if config.localization.gradcam:  # image model + masks: GradCAM localisation (Sec. 4.2)
        result.update(localization_runner.gradcam_results(model, estimator, data, config, out))
    if export_dir:
        scorer = export.AnomalyScorer(model, estimator, size, dcfg.feature)
        path = export.export(scorer, export_dir, data.name, export_version,
                             metadata={"config": config_lib.to_dict(config)})
        result["export_path"] = path
    files.write_json(os.path.join(out, "results.json"), result)
    if verbose:
        print(f"[{data.name}] image AUROC {result['auroc']:.4f}"
              + (f", GradCAM pixel AUROC {result['pixel_auroc']:.4f}"
                 if "pixel_auroc" in result else ""))
    return result


def check_model_dir(model_dir: str, config: RunConfig, overwrite: bool = False) -> None:
    """Refuses to mix runs: an existing model dir must hold the same config unless overwriting.

    Writes ``config.json`` for a new (or overwritten) directory.
    """
    path = os.path.join(model_dir, CONFIG_FILE)
    if tf.io.gfile.exists(path) and not overwrite:
        previous = files.read_json(path)
        current = json.loads(config_lib.to_json(config))  # tuples as JSON lists, like previous
        changed = sorted(_diff(previous, current))
        if changed:
            raise ValueError(
                f"model dir {model_dir!r} holds a run with different settings ({', '.join(changed)}); "
                "use another model dir, or --overwrite to start again from scratch")
    elif overwrite and tf.io.gfile.exists(model_dir):
        tf.io.gfile.rmtree(model_dir)
    files.write_json(path, config_lib.to_dict(config))


def collect_results(model_dir: str) -> dict[str, dict]:
    """Every category result under ``model_dir`` (from this and earlier invocations)."""
    results = {}
    for path in sorted(tf.io.gfile.glob(os.path.join(model_dir, "*", "results.json"))):
        result = files.read_json(path)
        results[result["category"]] = result
    return results


def summarize_run(model_dir: str, task: str) -> str:
    """Writes ``results.json`` and the Table-1-style ``results.md`` over every category in
    ``model_dir``; returns the Markdown."""
    results = collect_results(model_dir)
    per_category = {name: r["auroc"] for name, r in results.items()}
    kinds = {name: r["kind"] for name, r in results.items()}
    summary = metrics.summarize(per_category, kinds)
    table = metrics.markdown_table(per_category, kinds, task,
                                   title=f"Image AUROC (%), CutPaste ({task})")
    summary_json = {
        "task": task,
        "categories": results,
        "averages": {k: v[0] for k, v in summary["averages"].items()},
    }
    located = {n: r for n, r in results.items() if "pixel_auroc" in r}
    if located:
        pixel = {n: r["pixel_auroc"] for n, r in located.items()}
        pro = {n: r["aupro"] for n, r in located.items()}
        methods = sorted({r.get("localization_method", "patch") for r in located.values()})
        table += "\n" + metrics.localization_table(
            pixel, pro, kinds, title=f"Localisation ({', '.join(methods)}), {task}")
        summary_json["pixel_averages"] = {
            k: v[0] for k, v in metrics.summarize(pixel, kinds)["averages"].items()}
        summary_json["aupro_averages"] = {
            k: v[0] for k, v in metrics.summarize(pro, kinds)["averages"].items()}
    files.write_json(os.path.join(model_dir, "results.json"), summary_json)
    files.write_text(os.path.join(model_dir, "results.md"), table + "\n")
    return table


def _diff(a, b, prefix: str = ""):
    """Dotted names of the leaves that differ between two nested dicts."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            yield from _diff(a.get(key), b.get(key), f"{prefix}{key}.")
    elif a != b:
        yield prefix.rstrip(".")
