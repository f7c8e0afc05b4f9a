"""One category end to end: train -> density -> evaluate -> export, and the run's summary files.

Layout of a model directory::

    <model_dir>/config.json            the resolved RunConfig
    <model_dir>/results.json, results.md
    <model_dir>/<category>/checkpoints/, logs/train/
    <model_dir>/<category>/density.npz, scores.csv, results.json
    <model_dir>/<category>/threshold.json  the decision threshold and the scores it came from
    <export_dir>/<category>/<version>/  SavedModel (export_dir defaults to <model_dir>/export)
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Iterator, Optional, Sequence

import keras
import tensorflow as tf

from cutpaste_tf import __version__, files
from cutpaste_tf import config as config_lib
from cutpaste_tf.analysis import transfer
from cutpaste_tf.config import RunConfig
from cutpaste_tf.data import CategoryData, train_dataset
from cutpaste_tf.density import gaussian as density_lib
from cutpaste_tf.evaluation import evaluate, metrics
from cutpaste_tf.evaluation import threshold as threshold_lib
from cutpaste_tf.models import build_cutpaste_model
from cutpaste_tf.pipeline import patch_runner as localization_runner
from cutpaste_tf.serving import savedmodel
from cutpaste_tf.training import learning, train

CONFIG_FILE = "config.json"
VERSION_KEY = "cutpaste_tf_version"  # in config.json, beside the RunConfig fields
THRESHOLD_FILE = "threshold.json"


def build_model(config: RunConfig, precision: str = "float32",
                input_shape: Optional[Sequence[Optional[int]]] = None,
                pretrained: bool = True) -> keras.Model:
    """The classifier for ``config``, with weights initialised from ``config.train.seed``.

    ``precision`` is the Keras dtype policy of its layers (variables are float32 under every
    policy; the outputs are cast to float32). ``input_shape`` defaults to the training size.
    ``pretrained=False`` skips ``config.model.backbone_weights``: for a model whose weights
    are then restored from a checkpoint (no ImageNet download needed to re-export).
    """
    keras.utils.set_random_seed(config.train.seed)
    height, width = config.train.image_size
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        return build_cutpaste_model(config.train.num_classes, config.model.head_widths,
                                    config.model.backbone,
                                    input_shape=input_shape or (height, width, 3),
                                    backbone_weights=(config.model.backbone_weights
                                                      if pretrained else None),
                                    classifier_init=config.model.classifier_init)
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
    loc = config.localization
    crop = loc.train_patch_size if loc.model_type == "patch" else None

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        return train_dataset(
            data.train_files, tcfg.image_size, tcfg.task,
            context.get_per_replica_batch_size(tcfg.batch_size), tcfg.seed, tcfg.augment,
            start_step=start_step, augment_in_pipeline=not tcfg.augment_on_device,
            pipeline=(context.input_pipeline_id, context.num_input_pipelines),
            batches_per_step=replicas // context.num_input_pipelines, crop_size=crop)

    return iter(strategy.distribute_datasets_from_function(dataset_fn))


def run_category(data: CategoryData, config: RunConfig, model_dir: str,
                 export_dir: Optional[str] = None, export_version: int = 1,
                 verbose: bool = True, strategy: Optional[tf.distribute.Strategy] = None,
                 validation: Optional[tuple[Sequence[str], Sequence[int]]] = None
                 ) -> Optional[dict]:
    """Trains (or resumes) one category's model, fits its density, sets the decision threshold,
    evaluates and exports it.

    ``config.threshold.val_fraction`` of the training images are held out from training and the
    density fit to set the threshold, unless the dataset has its own normal validation images
    (``data.val_files``), which are used instead; ``validation`` (files, labels 0/1), if given,
    sets it by F1 instead. Training runs under ``strategy`` (default: none) in
    ``config.train.precision``; the density, scores and export use a float32 copy of the trained
    weights on this host, on the chief only (other workers return None). Returns the category's
    results (also in ``<model_dir>/<category>/results.json``).
    Patch models (``config.localization.model_type == "patch"``) go to
    :func:`cutpaste_tf.pipeline.patch_runner.run_patch_category`.
    """
    if config.localization.model_type == "patch":
        return localization_runner.run_patch_category(data, config, model_dir, export_dir,
                                                      export_version, verbose, strategy)
    out = os.path.join(model_dir, data.name)
    tcfg = config.train
    train_files, val_files = threshold_lib.split_holdout(
        data.train_files, config.threshold.val_fraction, tcfg.seed, given=data.val_files)
    data = dataclasses.replace(data, train_files=train_files)
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = build_model(config, tcfg.precision)
    start = train.restore_step(out)
    batches = training_batches(data, config, strategy, start)
    tic = time.perf_counter()
    if verbose and train.is_chief(strategy):
        held = (f" (the dataset's {len(val_files)} validation images set the threshold)"
                if data.val_files else
                f" ({len(val_files)} held out to set the threshold)" if val_files else "")
        stages = (f" ({tcfg.head_steps} head-only, then {tcfg.total_steps - tcfg.head_steps} "
                  "all layers)" if tcfg.head_steps else "")
        print(f"[{data.name}] training {tcfg.task} for {tcfg.total_steps} steps{stages} "
              f"on {len(data.train_files)} images{held}, "
              f"{strategy.num_replicas_in_sync} replica(s), {tcfg.precision}")
    last = train.train(model, batches, tcfg, out, verbose=verbose, strategy=strategy)
    train_seconds = time.perf_counter() - tic
    if not train.is_chief(strategy):
        return None
    if strategy is not tf.distribute.get_strategy() or tcfg.precision != "float32":
        # float32, undistributed: what is evaluated and exported
        model = build_model(config, pretrained=False)
        train.restore_weights(model, out)

    dcfg, size, batch = config.density, tcfg.image_size, config.eval_batch_size
    features = evaluate.embed(model, data.train_files, size, dcfg.feature, batch)
    estimator = evaluate.fit_features_checked(features, data, dcfg)
    density_lib.save_density(estimator, os.path.join(out, "density.npz"),
                             metadata={"backbone": config.model.backbone, "feature": dcfg.feature})
    # Mean and std of the training images' own scores: what an ensemble standardises with.
    train_scores = estimator.score(tf.constant(features, tf.float32)).numpy()
    cut, record = set_threshold(model, estimator, features, val_files, validation, config)
    files.write_json(os.path.join(out, THRESHOLD_FILE), record)
    scores = evaluate.score_images(model, estimator, data.test_files, size, dcfg.feature, batch,
                                   category=data.name)
    evaluate.write_scores(os.path.join(out, "scores.csv"), data, scores)
    result = {
        "category": data.name,
        "kind": data.kind,
        **evaluate.evaluate(scores, data),
        "num_validation": len(val_files),
        "threshold": cut.to_dict(),
        # Reported only: the threshold above was set without test labels.
        "test_at_threshold": threshold_lib.decision_metrics(scores, data.test_labels, cut.value),
        "train_score_stats": {"mean": float(train_scores.mean()),
                              "std": float(train_scores.std())},
        "train_steps": tcfg.total_steps,
        "train_seconds_this_run": round(train_seconds, 1),
        "final_train_metrics": last,
        # Whether the proxy task left chance (None for a run too short to judge).
        "learning": learning.verdict(out, tcfg.total_steps, tcfg.num_classes),
    }
    if config.model.backbone in config_lib.LEVEL7_BACKBONES:  # EfficientNet: both Table 3 features (Sec. 4.3)
        result["transfer"] = {
            "stage": transfer.stage_name(config),
            "feature_auroc": transfer.feature_aurocs(model, data, config,
                                                     {dcfg.feature: result["auroc"]})}
    if config.localization.gradcam:  # image model + masks: GradCAM localisation (Sec. 4.2)
        result.update(localization_runner.gradcam_results(model, estimator, data, config, out))
    if export_dir:
        scorer = savedmodel.AnomalyScorer(model, estimator, size, dcfg.feature, threshold=cut.value)
        path = savedmodel.export(scorer, export_dir, data.name, export_version,
                             metadata={"config": config_lib.to_dict(config),
                                       "threshold_info": cut.to_dict()})
        result["export_path"] = path
    files.write_json(os.path.join(out, "results.json"), result)
    if verbose:
        print(f"[{data.name}] image AUROC {result['auroc']:.4f}"
              + (f", GradCAM ({result['gradcam_layer']}) pixel AUROC "
                 f"{result['pixel_auroc']:.4f}" if "pixel_auroc" in result else "")
              + (f"; {result['pixel_auroc_not_reported']}"
                 if "pixel_auroc_not_reported" in result else "")
              + f"; threshold {cut.value:.4g} ({cut.method})"
              + ("; PROXY TASK NOT LEARNED, see the warning above"
                 if learning.not_learned({data.name: result}) else ""))
    return result


def set_threshold(model: keras.Model, estimator: density_lib.Density, train_features,
                  val_files: Sequence[str],
                  validation: Optional[tuple[Sequence[str], Sequence[int]]],
                  config: RunConfig) -> tuple[threshold_lib.Threshold, dict]:
    """The decision threshold (see :mod:`cutpaste_tf.evaluation.threshold`) and a record of the normal
    scores it came from, so that ``launch.export --threshold_quantile`` can redo it later."""
    dcfg, size, batch = config.density, config.train.image_size, config.eval_batch_size
    q = config.threshold.quantile
    if val_files:
        normal = evaluate.score_images(model, estimator, val_files, size, dcfg.feature, batch)
        cut = threshold_lib.quantile_threshold(normal, q, "validation_quantile")
        source = {"normal_scores": normal.tolist(), "normal_files": list(val_files)}
    else:
        def fit(x):
            fold = evaluate.fit_features(x, dcfg)
            return lambda y: fold.score(tf.constant(y, tf.float32)).numpy()

        normal = threshold_lib.out_of_fold_scores(train_features, fit, config.threshold.folds,
                                                  config.train.seed)
        cut = threshold_lib.quantile_threshold(normal, q, "out_of_fold_quantile")
        source = {"normal_scores": normal.tolist(), "normal_files": []}
    record = {"normal_method": cut.method, "normal_threshold": cut.to_dict(), **source}
    if validation is not None:
        paths, labels = validation
        labelled = evaluate.score_images(model, estimator, paths, size, dcfg.feature, batch)
        cut = threshold_lib.f1_threshold(labelled, labels)
        record.update(labelled_files=list(paths), labelled_labels=[int(v) for v in labels],
                      labelled_scores=labelled.tolist())
    record["threshold"] = cut.to_dict()
    return cut, record


def check_model_dir(model_dir: str, config: RunConfig, overwrite: bool = False) -> None:
    """Refuses to mix runs: an existing model dir must hold the same config, written by a
    compatible package version, unless overwriting.

    A directory that exists, is not empty and holds no ``config.json`` is refused even with
    ``overwrite``: it is not a model dir, and ``--overwrite`` deletes only model dirs.
    Writes ``config.json`` (the config and the package version) for a new or overwritten one.
    """
    path = os.path.join(model_dir, CONFIG_FILE)
    exists = tf.io.gfile.exists(path)
    if not exists and tf.io.gfile.isdir(model_dir) and tf.io.gfile.listdir(model_dir):
        raise ValueError(
            f"model dir {model_dir!r} exists, is not empty and holds no {CONFIG_FILE}, so it is "
            "not a cutpaste_tf model dir; refusing to write into (or, with --overwrite, delete) "
            "it; choose a new or empty directory")
    if exists and not overwrite:
        try:
            previous = files.read_json(path)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON ({e}); use another model dir, or "
                             "--overwrite to start again") from None
        check_version(previous.pop(VERSION_KEY, None), f"model dir {model_dir!r}")
        # Runs from before thresholds were configurable trained on every image: the defaults.
        previous.setdefault("threshold", config_lib.to_dict(config_lib.ThresholdConfig()))
        # Runs from before two-stage training had one stage: these defaults.
        for key in ("head_epochs", "head_learning_rate", "freeze_batchnorm"):
            previous.get("train", {}).setdefault(key, getattr(config_lib.TrainConfig(), key))
        # Runs from before the classifier's initialisation was a choice used Keras' default.
        previous.get("model", {}).setdefault("classifier_init", "glorot_uniform")
        # Runs from before the GradCAM layer was a choice: it only changes the evaluation, so
        # they resume with this run's choice.
        previous.get("localization", {}).setdefault(
            "gradcam_layer", config.localization.gradcam_layer)
        # Runs from before --mask_threshold read masks as value > 127: the same as 0.5.
        previous.setdefault("mask_threshold", 0.5)
        _migrate_scar_reference(previous)
        current = json.loads(config_lib.to_json(config))  # tuples as JSON lists, like previous
        before = previous.get("model", {}).get("backbone")
        if before != config.model.backbone:
            raise ValueError(
                f"model dir {model_dir!r} holds a {before!r} model, this run asks for backbone "
                f"{config.model.backbone!r}; use another model dir, or --overwrite to start again")
        changed = sorted(_diff(previous, current))
        if changed:
            raise ValueError(
                f"model dir {model_dir!r} holds a run with different settings ({', '.join(changed)}); "
                "use another model dir, or --overwrite to start again from scratch")
    elif overwrite and tf.io.gfile.exists(model_dir):
        files.remove_dir(model_dir)
    files.write_json(path, {**config_lib.to_dict(config), VERSION_KEY: __version__})


def _migrate_scar_reference(previous: dict) -> None:
    """Runs from before scar sizes were pixels at every image size scaled them from 256x256
    (``scar_reference_size`` 256); at 256x256 that is the same scar, so such a run resumes."""
    train = previous.get("train", {})
    augment, size = train.get("augment", {}), list(train.get("image_size", []))
    if augment.get("scar_reference_size") == 256 and size == [256, 256]:
        augment["scar_reference_size"] = 0


def check_version(written: Optional[str], what: str) -> None:
    """Raises ValueError unless ``written`` is this package's release series (major.minor)."""
    if written is None:
        raise ValueError(
            f"{what} does not record the cutpaste_tf version that wrote it (an older release); "
            f"this is {__version__}: use another model dir, or --overwrite to start again")
    if written.split(".")[:2] != __version__.split(".")[:2]:
        raise ValueError(
            f"{what} was written by cutpaste_tf {written}, this is {__version__}; its checkpoints "
            "and files may not load the same way: resume it with that version, or use another "
            "model dir (or --overwrite) to start again")


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
    flagged = learning.not_learned(results)
    table = metrics.markdown_table(per_category, kinds, task,
                                   title=f"Image AUROC (%), {task_title(task)}", flagged=flagged)
    if flagged:
        table += "\n" + not_learned_note(results, flagged) + "\n"
    summary_json = {
        "task": task,
        "categories": results,
        "averages": {k: v[0] for k, v in summary["averages"].items()},
        "not_learned": flagged,
    }
    located = {n: r for n, r in results.items() if "pixel_auroc" in r}
    if located:
        pixel = {n: r["pixel_auroc"] for n, r in located.items()}
        pro = {n: r["aupro"] for n, r in located.items()}
        methods = sorted({" ".join([r.get("localization_method", "patch"),
                                    *([r["gradcam_layer"]] if "gradcam_layer" in r else [])])
                          for r in located.values()})
        table += "\n" + metrics.localization_table(
            pixel, pro, kinds, title=f"Localisation ({', '.join(methods)}), {task}")
        summary_json["pixel_averages"] = {
            k: v[0] for k, v in metrics.summarize(pixel, kinds)["averages"].items()}
        summary_json["aupro_averages"] = {
            k: v[0] for k, v in metrics.summarize(pro, kinds)["averages"].items()}
    unreported = {n: r["pixel_auroc_not_reported"] for n, r in results.items()
                  if "pixel_auroc_not_reported" in r}
    if unreported:
        table += "\nLocalisation (gradcam): " + "; ".join(
            f"{n}: {why}" for n, why in sorted(unreported.items())) + ".\n"
        summary_json["pixel_not_reported"] = unreported
    transferred = {n: r for n, r in results.items() if "transfer" in r}
    if transferred:
        table += "\n" + transfer.table3_markdown(transferred, kinds)
    per_defect = defect_table(with_defect_counts(model_dir, results))
    if per_defect:
        table += "\n" + per_defect
    files.write_json(os.path.join(model_dir, "results.json"), summary_json)
    files.write_text(os.path.join(model_dir, "results.md"), table + "\n")
    return table


def with_defect_counts(model_dir: str, results: dict[str, dict]) -> dict[str, dict]:
    """``results`` where each has ``num_test_per_defect``; a result written before it was
    recorded gets it from its category's scores.csv (if there)."""
    out = {}
    for name, result in results.items():
        scores_csv = os.path.join(model_dir, name, "scores.csv")
        if "num_test_per_defect" not in result and tf.io.gfile.exists(scores_csv):
            result = {**result, "num_test_per_defect": evaluate.defect_counts(scores_csv)}
        out[name] = result
    return out


def defect_table(results: dict[str, dict]) -> str:
    """Markdown: image AUROC (%) of each defect type's images against the category's normal
    test images, one row per category and defect type (categories in the paper's order, then
    the others by name; defect types by name), the pixel AUROC column only when some category
    has it. Empty when no category has more than one defect type."""
    if all(len(r.get("auroc_per_defect", {})) <= 1 for r in results.values()):
        return ""
    pixel = any(r.get("pixel_auroc_per_defect") for r in results.values())
    lines = ["### Image AUROC (%) per defect type", "",
             "| Category | Defect type | Images | AUROC %"
             + (" | Pixel AUROC % |" if pixel else " |"),
             "| --- | --- | ---: | ---:" + (" | ---: |" if pixel else " |")]
    for name in metrics.order_categories(sorted(results)):
        result = results[name]
        counts = result.get("num_test_per_defect", {})
        for defect, value in sorted(result.get("auroc_per_defect", {}).items()):
            cells = [metrics.display_name(name), metrics.display_name(defect),
                     str(counts.get(defect, "—")), f"{100 * value:.1f}"]
            if pixel:
                px = result.get("pixel_auroc_per_defect", {}).get(defect)
                cells.append("—" if px is None else f"{100 * px:.1f}")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def not_learned_note(results: dict[str, dict], flagged: Sequence[str]) -> str:
    """The Markdown note under a results table that names the runs marked "not learning"."""
    lines = [f"⚠ **Proxy task not learned** by {', '.join(flagged)}: training accuracy within "
             f"{100 * learning.MARGIN:.0f} points of chance after a quarter of the steps or at "
             "the end, so these AUROCs do not measure the method:"]
    for name in flagged:
        lines.append(f"- {name}: {learning.figures(results[name]['learning'])}")
    return "\n".join(lines)


def task_title(task: str) -> str:
    """How tables name a proxy task: "CutPaste (3way)" for CutPaste's, "cutout task" for a
    baseline's."""
    if task in ("3way", "cutpaste", "scar", "union"):
        return f"CutPaste ({task})"
    return f"{task} task"


def _diff(a, b, prefix: str = ""):
    """Dotted names of the leaves that differ between two nested dicts."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            yield from _diff(a.get(key), b.get(key), f"{prefix}{key}.")
    elif a != b:
        yield prefix.rstrip(".")
