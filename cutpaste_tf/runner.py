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
from typing import Iterator, Optional

import keras
import tensorflow as tf

from cutpaste_tf import config as config_lib
from cutpaste_tf import density as density_lib
from cutpaste_tf import evaluate, export, files, metrics, train
from cutpaste_tf.config import RunConfig
from cutpaste_tf.data import CategoryData, train_dataset
from cutpaste_tf.models import build_cutpaste_model

CONFIG_FILE = "config.json"


def build_model(config: RunConfig, precision: str = "float32") -> keras.Model:
    """The classifier for ``config``, with weights initialised from ``config.train.seed``.

    ``precision`` is the Keras dtype policy of its layers (variables are float32 under every
    policy; the outputs are cast to float32).
    """
    keras.utils.set_random_seed(config.train.seed)
    height, width = config.train.image_size
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        return build_cutpaste_model(config.train.num_classes, config.model.head_widths,
                                    config.model.backbone, input_shape=(height, width, 3))
    finally:
        keras.config.set_dtype_policy(previous)


def check_batch(config: RunConfig, replicas: int) -> None:
    """The global batch must split into equal per-replica batches of whole view groups."""
    tcfg = config.train
    if tcfg.batch_size % (replicas * tcfg.num_views):
        raise ValueError(
            f"--batch_size={tcfg.batch_size} does not split over {replicas} replicas into "
            f"per-replica batches that are multiples of the {tcfg.num_views} views of task "
            f"{tcfg.task!r}; use a multiple of {replicas * tcfg.num_views}")


def training_batches(data: CategoryData, config: RunConfig, strategy: tf.distribute.Strategy,
                     start_step: int = 0) -> Iterator:
    """Per-replica training batches from one input pipeline per worker, starting at
    ``start_step`` (the strategy's own ``distribute_datasets_from_function``)."""
    tcfg = config.train
    replicas = strategy.num_replicas_in_sync
    check_batch(config, replicas)

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        return train_dataset(
            data.train_files, tcfg.image_size, tcfg.task,
            context.get_per_replica_batch_size(tcfg.batch_size), tcfg.seed, tcfg.augment,
            start_step=start_step, augment_in_pipeline=not tcfg.augment_on_device,
            pipeline=(context.input_pipeline_id, context.num_input_pipelines),
            batches_per_step=replicas // context.num_input_pipelines)

    return iter(strategy.distribute_datasets_from_function(dataset_fn))


def run_category(data: CategoryData, config: RunConfig, model_dir: str,
                 export_dir: Optional[str] = None, export_version: int = 1,
                 verbose: bool = True, strategy: Optional[tf.distribute.Strategy] = None
                 ) -> Optional[dict]:
    """Trains (or resumes) one category's model, fits its density, evaluates and exports it.

    Training runs under ``strategy`` (default: none) in ``config.train.precision``; the density,
    scores and export use a float32 copy of the trained weights on this host, on the chief only
    (other workers return None).

    Returns the category's results (also written to ``<model_dir>/<category>/results.json``).
    """
    out = os.path.join(model_dir, data.name)
    tcfg = config.train
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = build_model(config, tcfg.precision)
    start = train.restore_step(out)
    batches = training_batches(data, config, strategy, start)
    tic = time.perf_counter()
    if verbose and train.is_chief(strategy):
        print(f"[{data.name}] training {tcfg.task} for {tcfg.total_steps} steps "
              f"on {len(data.train_files)} images, {strategy.num_replicas_in_sync} replica(s), "
              f"{tcfg.precision}")
    last = train.train(model, batches, tcfg, out, verbose=verbose, strategy=strategy)
    train_seconds = time.perf_counter() - tic
    if not train.is_chief(strategy):
        return None
    if strategy is not tf.distribute.get_strategy() or tcfg.precision != "float32":
        model = build_model(config)  # float32, undistributed: what is evaluated and exported
        train.restore_weights(model, out)

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
    if export_dir:
        scorer = export.AnomalyScorer(model, estimator, size, dcfg.feature)
        path = export.export(scorer, export_dir, data.name, export_version,
                             metadata={"config": config_lib.to_dict(config)})
        result["export_path"] = path
    files.write_json(os.path.join(out, "results.json"), result)
    if verbose:
        print(f"[{data.name}] image AUROC {result['auroc']:.4f}")
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
        files.remove_dir(model_dir)
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
    files.write_json(os.path.join(model_dir, "results.json"), {
        "task": task,
        "categories": results,
        "averages": {k: v[0] for k, v in summary["averages"].items()},
    })
    files.write_text(os.path.join(model_dir, "results.md"), table + "\n")
    return table


def _diff(a, b, prefix: str = ""):
    """Dotted names of the leaves that differ between two nested dicts."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            yield from _diff(a.get(key), b.get(key), f"{prefix}{key}.")
    elif a != b:
        yield prefix.rstrip(".")
