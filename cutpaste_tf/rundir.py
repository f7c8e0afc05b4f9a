"""The layout of a model dir, its config.json, and what a finished run left in it.

Every other module asks this one for a file's name or place::

    <model_dir>/config.json            the resolved RunConfig and the package version
    <model_dir>/flags.txt              a flagfile that redoes the run
    <model_dir>/results.json, results.md, report.html
    <model_dir>/<category>/checkpoints/, logs/train/, train_curve.json
    <model_dir>/<category>/density.npz (image model) or dense_density.npz (patch model)
    <model_dir>/<category>/threshold.json  the decision threshold and the scores it came from
    <model_dir>/<category>/scores.csv, results.json, heatmaps/, model-v<version>.tflite
    <model_dir>/<category>/test_split.json  normal test images held out of a training folder
    <model_dir>/<category>/failed.json  why the category's last attempt failed (until it succeeds)
    <export_dir>/<category>/<version>/  SavedModel (export_dir defaults to <model_dir>/export)

Only this module reads and writes ``config.json`` and ``threshold.json``. A config.json written
by an earlier build of this release series is brought up to date by :data:`MIGRATIONS` before
it is compared with a run's config.
"""

from __future__ import annotations

import json
import os
from typing import Callable, Sequence

import tensorflow as tf

from cutpaste_tf import config as config_lib
from cutpaste_tf import files, release
from cutpaste_tf.config import DensityConfig, RunConfig

# The run (model dir root).
CONFIG_FILE = "config.json"
VERSION_KEY = "cutpaste_tf_version"  # in config.json, beside the RunConfig fields
FLAGS_FILE = "flags.txt"
RESULTS_FILE = "results.json"  # also one per category
RESULTS_TABLE = "results.md"
REPORT_FILE = "report.html"
EXPORT_DIR = "export"
# One category (<model_dir>/<category>).
CHECKPOINT_DIR = "checkpoints"
LOG_DIR = os.path.join("logs", "train")
TRAIN_CURVE_FILE = "train_curve.json"
DENSITY_FILE = "density.npz"  # image model: one Gaussian
DENSE_DENSITY_FILE = "dense_density.npz"  # patch model: a Gaussian per location (or one)
THRESHOLD_FILE = "threshold.json"
SCORES_FILE = "scores.csv"
HEATMAP_DIR = "heatmaps"
TEST_SPLIT_FILE = "test_split.json"  # --dataset=folder without --test_good_dir: held-out normals
FAILED_FILE = "failed.json"  # the last attempt's failure (cutpaste_tf.pipeline.failures)
# The training images' statistics and the normal scores new images are compared with
# (cutpaste_tf.pipeline.drift_check), and the drift stress test (cutpaste_tf.pipeline.stress).
DRIFT_REFERENCE_FILE = "drift_reference.json"
ROBUSTNESS_FILE = "robustness.json"
# What to do with a model dir that another release series wrote (:func:`release.check`).
NEW_RUN = ("its checkpoints and files may not load the same way: use another model dir, or "
           "overwrite=True to start again (or resume it with the release that wrote it)")


def category_dir(model_dir: str, category: str) -> str:
    """``<model_dir>/<category>``: where one category's files go."""
    return os.path.join(model_dir, category)


def default_export_dir(model_dir: str) -> str:
    """``<model_dir>/export``: the SavedModel root when none is given."""
    return os.path.join(model_dir, EXPORT_DIR)


def tflite_file(version: int) -> str:
    """The name of a category's TFLite model for export ``version``."""
    return f"model-v{version}.tflite"


# ---------------------------------------------------------------------------------------------
# config.json


def _threshold_defaults(previous: dict, config: RunConfig) -> None:
    """Before thresholds were configurable, runs trained on every image: the defaults."""
    previous.setdefault("threshold", config_lib.to_dict(config_lib.ThresholdConfig()))


def _two_stage_defaults(previous: dict, config: RunConfig) -> None:
    """Before two-stage training, runs had one stage: these defaults."""
    for key in ("head_epochs", "head_learning_rate", "freeze_batchnorm"):
        previous.get("train", {}).setdefault(key, getattr(config_lib.TrainConfig(), key))


def _classifier_init(previous: dict, config: RunConfig) -> None:
    """Before the classifier's initialisation was a choice, runs used Keras' default."""
    previous.get("model", {}).setdefault("classifier_init", "glorot_uniform")


def _mask_threshold(previous: dict, config: RunConfig) -> None:
    """Before ``mask_threshold``, masks were read as value > 127: the same as 0.5."""
    previous.setdefault("mask_threshold", 0.5)


def _gradcam_layer(previous: dict, config: RunConfig) -> None:
    """Before the GradCAM layer was a choice: it only changes the evaluation, so such a run
    resumes with this run's choice."""
    previous.get("localization", {}).setdefault("gradcam_layer",
                                                config.localization.gradcam_layer)


def _scar_reference(previous: dict, config: RunConfig) -> None:
    """Before scar sizes were pixels at every image size, they were scaled from 256x256
    (``scar_reference_size`` 256); at 256x256 that is the same scar, so such a run resumes."""
    train = previous.get("train", {})
    augment, size = train.get("augment", {}), list(train.get("image_size", []))
    if augment.get("scar_reference_size") == 256 and size == [256, 256]:
        augment["scar_reference_size"] = 0


def _warmup_and_head_norm(previous: dict, config: RunConfig) -> None:
    """Before warm-up and the head's batch norm were choices: no warm-up, batch norm."""
    previous.get("train", {}).setdefault("warmup_steps", 0)
    previous.get("model", {}).setdefault("head_batchnorm", True)


def _head_init(previous: dict, config: RunConfig) -> None:
    """Before the head's initialisation was a choice: Keras' default."""
    previous.get("model", {}).setdefault("head_init", "glorot_uniform")


def _head_embedding(previous: dict, config: RunConfig) -> None:
    """Before the head could end in a linear layer: it did not."""
    previous.get("model", {}).setdefault("head_embedding", 0)


def _drift_options(previous: dict, config: RunConfig) -> None:
    """Before the drift options: no input standardisation, the density on un-augmented images
    only. The stress test's settings change nothing that was trained, so a resumed run (of any
    build) takes the new ones."""
    previous.get("model", {}).setdefault("input_standardization", False)
    density = previous.get("density", {})
    density.setdefault("augment_copies", 0)
    density.setdefault("augment_jitter", list(DensityConfig().augment_jitter))
    previous["robustness"] = config_lib.to_dict(config.robustness)


# Config fields renamed to the flag that sets them: (section, name before, name now).
RENAMED_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("density", "normalize", "normalize_features"),
    ("localization", "patch_size", "dense_patch_size"),
    ("localization", "sigma", "upsample_sigma"),
    ("localization", "chunk_size", "dense_chunk"),
    ("localization", "pictures", "heatmaps"),
)


def _flag_names(previous: dict, config: RunConfig) -> None:
    """Before config fields took the names of their flags (``localization.pictures`` is now
    ``localization.heatmaps``, see :data:`RENAMED_FIELDS`): the same values, renamed."""
    for section, before, now in RENAMED_FIELDS:
        fields = previous.get(section, {})
        if before in fields:
            fields.setdefault(now, fields.pop(before))


# The steps that bring a config.json of an earlier build up to this one, in the order the
# fields came in; each only fills in (or restates) what a run from before that field did.
MIGRATIONS: tuple[tuple[str, Callable[[dict, RunConfig], None]], ...] = (
    ("threshold settings", _threshold_defaults),
    ("two-stage training", _two_stage_defaults),
    ("classifier initialisation", _classifier_init),
    ("mask threshold", _mask_threshold),
    ("GradCAM layer", _gradcam_layer),
    ("scar sizes in pixels", _scar_reference),
    ("fields named as their flags", _flag_names),
    ("warm-up and head batch norm", _warmup_and_head_norm),
    ("head initialisation", _head_init),
    ("head embedding layer", _head_embedding),
    ("drift options", _drift_options),
)


def migrate(previous: dict, config: RunConfig) -> dict:
    """``previous`` (a config.json's RunConfig fields) after every step of :data:`MIGRATIONS`;
    ``config`` is the run that wants to resume it. Changes ``previous`` in place."""
    for _, step in MIGRATIONS:
        step(previous, config)
    return previous


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
            "not a cutpaste_tf model dir; refusing to write into (or, with overwrite=True, delete) "
            "it; choose a new or empty directory")
    if exists and not overwrite:
        _check_same_run(model_dir, path, config)
    elif overwrite and tf.io.gfile.exists(model_dir):
        files.remove_dir(model_dir)
    files.write_json(path, {**config_lib.to_dict(config), VERSION_KEY: release.__version__})


def _check_same_run(model_dir: str, path: str, config: RunConfig) -> None:
    """Raises ValueError unless the config.json at ``path``, migrated, is ``config``."""
    try:
        previous = files.read_json(path)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); use another model dir, or "
                         "overwrite=True to start again") from None
    release.check(previous.pop(VERSION_KEY, None), f"model dir {model_dir!r}", NEW_RUN)
    migrate(previous, config)
    current = json.loads(config_lib.to_json(config))  # tuples as JSON lists, like previous
    before = previous.get("model", {}).get("backbone")
    if before != config.model.backbone:
        raise ValueError(
            f"model dir {model_dir!r} holds a {before!r} model, this run asks for backbone "
            f"{config.model.backbone!r}; use another model dir, or overwrite=True to start again")
    changed = list(_diff(previous, current))
    if changed:
        names = ", ".join(name for name, _, _ in changed)
        values = "; ".join(f"{name} was {_short(before)}, now {_short(after)}"
                           for name, before, after in changed)
        raise ValueError(
            f"model dir {model_dir!r} holds a run with different settings ({names}): "
            f"{values}; use another model dir, or overwrite=True to start again from scratch")


def _short(value, limit: int = 60) -> str:
    """A setting's JSON text, cut to ``limit`` characters."""
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _diff(a, b, prefix: str = ""):
    """(dotted name, value in ``a``, value in ``b``) of each leaf that differs between two
    nested dicts, in name order (keys are walked sorted)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            yield from _diff(a.get(key), b.get(key), f"{prefix}{key}.")
    elif a != b:
        yield prefix.rstrip("."), a, b


def config_file(model_dir: str) -> str:
    """The path of ``<model_dir>/config.json``; ValueError if there is none."""
    path = os.path.join(model_dir, CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        raise ValueError(f"model_dir={model_dir} has no {CONFIG_FILE}; is it a "
                         "launch.train model dir?")
    return path


def load_run_config(model_dir: str) -> RunConfig:
    """The RunConfig in ``<model_dir>/config.json``; ValueError if it is missing or from an
    incompatible package version."""
    raw = files.read_json(config_file(model_dir))
    release.check(raw.pop(VERSION_KEY, None), f"model dir {model_dir!r}", NEW_RUN)
    _flag_names(raw, RunConfig())  # fields renamed since; the other steps only fill defaults
    return config_lib.from_dict(RunConfig, raw)


# ---------------------------------------------------------------------------------------------
# A finished run's files.


def trained_categories(model_dir: str, density_file: str = DENSITY_FILE) -> list[str]:
    """Categories of ``model_dir`` that have a fitted density (``<category>/<density_file>``)."""
    if not tf.io.gfile.isdir(model_dir):
        return []
    return sorted(n.rstrip("/") for n in tf.io.gfile.listdir(model_dir)
                  if tf.io.gfile.exists(os.path.join(model_dir, n.rstrip("/"), density_file)))


def requested_categories(model_dir: str, requested: Sequence[str],
                         density_file: str = DENSITY_FILE) -> list[str]:
    """The ``requested`` categories (all when empty or ``["all"]``), each of which must have a
    trained model (a density file) in ``model_dir``."""
    found = trained_categories(model_dir, density_file)
    if list(requested) in (["all"], []):
        if not found:
            raise ValueError(f"model_dir={model_dir} holds no trained category "
                             f"(no <category>/{density_file})")
        return found
    missing = [c for c in requested if c not in found]
    if missing:
        raise ValueError(f"no trained model for {', '.join(missing)} in model_dir={model_dir} "
                         f"(trained: {', '.join(found) or 'none'})")
    return list(requested)


def read_category_results(path: str) -> dict[str, dict]:
    """The per-category results an analysis wrote to ``path`` (``{"categories": ...}``) on
    earlier invocations, so a new one adds to them; empty when there is no such file."""
    if not tf.io.gfile.exists(path):
        return {}
    try:
        return files.read_json(path)["categories"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{path} is not a {os.path.basename(path)} this launcher wrote; move "
                         "it away and run again") from None


def write_threshold(out: str, record: dict) -> None:
    """Writes a category's ``threshold.json`` (see
    :func:`cutpaste_tf.evaluation.threshold.record`) into its folder ``out``."""
    files.write_json(os.path.join(out, THRESHOLD_FILE), record)


def read_threshold(out: str) -> dict:
    """The ``threshold.json`` of the category folder ``out``; ValueError if there is none."""
    path = os.path.join(out, THRESHOLD_FILE)
    if not tf.io.gfile.exists(path):
        raise ValueError(f"{path} is missing (a model trained before thresholds were "
                         "stored); retrain, or give threshold=<value>")
    return files.read_json(path)


def held_out_files(out: str) -> list[str]:
    """The normal training images the category (folder ``out``) held out from training and the
    density fit (``val_fraction``, or the dataset's own validation images); ValueError when
    the run held none out."""
    record = read_threshold(out)
    held = list(record.get("normal_files") or [])
    if record.get("normal_method") != "validation_quantile" or not held:
        raise ValueError(f"the run in {out} held no training images out (it was trained with "
                         "val_fraction=0); train it again with val_fraction > 0")
    return held


def collect_results(model_dir: str) -> dict[str, dict]:
    """Every category result under ``model_dir`` (from this and earlier invocations)."""
    results = {}
    for path in sorted(tf.io.gfile.glob(os.path.join(model_dir, "*", RESULTS_FILE))):
        result = files.read_json(path)
        results[result["category"]] = result
    return results
