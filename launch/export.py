"""Re-export trained categories without training: a new threshold, a new version, TFLite.

    python -m launch.export --model_dir=runs/quickstart --category=washer --threshold=31.5
    python -m launch.export --model_dir=runs/quickstart --category=washer --threshold_quantile=0.99

Rebuilds the network from ``<model_dir>/config.json``, restores the newest checkpoint and the
fitted density (``<category>/density.npz``) and writes a SavedModel with the threshold:
``--threshold`` sets a value; ``--threshold_quantile`` recomputes it from the normal scores stored
in ``<category>/threshold.json`` (held-out or out-of-fold, as at training time); neither keeps the
stored one. The export goes to the next version (``--export_version`` to choose), so a running
TF Serving picks it up. ``threshold.json``, the category's ``results.json`` and the run's
``results.json`` are updated. Exit codes: 0 done, 2 bad flags or missing files.
"""

from __future__ import annotations

import os
import sys

import tensorflow as tf
from absl import app

from cutpaste_tf import config as config_lib
from cutpaste_tf import files
from cutpaste_tf.density import gaussian as density_lib
from cutpaste_tf.evaluation import evaluate
from cutpaste_tf.evaluation import threshold as threshold_lib
from cutpaste_tf.localization import density as dense_density
from cutpaste_tf.pipeline import patch_runner as loc_runner
from cutpaste_tf.pipeline import runner
from cutpaste_tf.serving import savedmodel, tflite
from cutpaste_tf.serving.patch_scorer import PatchScorer
from cutpaste_tf.training import train
from launch import flags as flag_defs

FLAGS = flag_defs.FLAGS


def categories(model_dir: str) -> list[str]:
    """The requested categories that have a trained model (a density file) in ``model_dir``."""
    trained = sorted(n.rstrip("/") for n in tf.io.gfile.listdir(model_dir)
                     if tf.io.gfile.exists(os.path.join(model_dir, n.rstrip("/"), "density.npz")))
    if FLAGS.category in (["all"], []):
        if not trained:
            raise ValueError(f"--model_dir={model_dir} holds no trained category "
                             "(no <category>/density.npz)")
        return trained
    missing = [c for c in FLAGS.category if c not in trained]
    if missing:
        raise ValueError(f"no trained model for {', '.join(missing)} in --model_dir={model_dir} "
                         f"(trained: {', '.join(trained) or 'none'})")
    return list(FLAGS.category)


def new_threshold(record: dict) -> threshold_lib.Threshold:
    """The threshold the flags ask for, given the category's ``threshold.json`` record."""
    if FLAGS.threshold is not None:
        return threshold_lib.Threshold(float(FLAGS.threshold), "manual",
                                       note="set with launch.export --threshold")
    if FLAGS["threshold_quantile"].present:
        if not record.get("normal_scores"):
            raise ValueError("threshold.json holds no normal scores to take a quantile of")
        return threshold_lib.quantile_threshold(record["normal_scores"], FLAGS.threshold_quantile,
                                                record["normal_method"])
    return threshold_lib.Threshold(**record["threshold"])


def reexport(model_dir: str, category: str, config, export_dir: str) -> str:
    """Exports one category with the requested threshold; returns the export path."""
    out = os.path.join(model_dir, category)
    record_path = os.path.join(out, runner.THRESHOLD_FILE)
    if not tf.io.gfile.exists(record_path):
        raise ValueError(f"{record_path} is missing (a model trained before thresholds were "
                         "stored); retrain, or give --threshold")
    record = files.read_json(record_path)
    cut = new_threshold(record)
    loc = config.localization
    if loc.model_type == "patch":
        model = loc_runner.build_patch_model(config)
        if not train.restore_weights(model, out):
            raise ValueError(f"no checkpoint under {os.path.join(out, 'checkpoints')}")
        dense = dense_density.load(os.path.join(out, loc_runner.DENSITY_FILE))
        scorer = PatchScorer(model, dense, config.train.image_size, loc.patch_size, loc.stride,
                             loc.upsample_sigma, config.density.feature, loc.chunk_size,
                             threshold=cut.value)
    else:
        model = runner.build_model(config, pretrained=False)  # weights from the checkpoint
        if not train.restore_weights(model, out):
            raise ValueError(f"no checkpoint under {os.path.join(out, 'checkpoints')}")
        estimator = density_lib.load_density(os.path.join(out, "density.npz"),
                                             expect={"backbone": config.model.backbone,
                                                     "feature": config.density.feature})
        scorer = savedmodel.AnomalyScorer(model, estimator, config.train.image_size,
                                      config.density.feature, threshold=cut.value)
    base = os.path.join(export_dir, category)
    existing = savedmodel.versions(base)
    version = (FLAGS.export_version if FLAGS["export_version"].present
               else (existing[-1] + 1 if existing else 1))
    path = savedmodel.export(scorer, export_dir, category, version,
                         metadata={"config": config_lib.to_dict(config),
                                   "threshold_info": cut.to_dict()})
    record["threshold"] = cut.to_dict()
    files.write_json(record_path, record)
    result_path = os.path.join(out, "results.json")
    if tf.io.gfile.exists(result_path):
        result = files.read_json(result_path)
        result["threshold"] = cut.to_dict()
        result["export_path"] = path
        scores_path = os.path.join(out, "scores.csv")
        if tf.io.gfile.exists(scores_path):
            _, labels, scores = evaluate.read_scores(scores_path)
            result["test_at_threshold"] = threshold_lib.decision_metrics(
                scores.tolist(), labels.tolist(), cut.value)
        files.write_json(result_path, result)
    if FLAGS.tflite:
        tflite_path = os.path.join(out, f"model-v{version}.tflite")
        files.write_bytes(tflite_path, tflite.convert(scorer))
        print(f"[{category}] TFLite: {tflite_path}")
    print(f"[{category}] threshold {cut.value:.6g} ({cut.method}"
          f"{f', quantile {cut.quantile}' if cut.quantile else ''}) -> {path}")
    return path


def main(argv: list[str]) -> None:
    flag_defs.start(argv)
    try:
        if not FLAGS.model_dir:
            raise ValueError("--model_dir is required")
        config_path = os.path.join(FLAGS.model_dir, runner.CONFIG_FILE)
        if not tf.io.gfile.exists(config_path):
            raise ValueError(f"--model_dir={FLAGS.model_dir} has no {runner.CONFIG_FILE}; "
                             "is it a launch.train model dir?")
        if FLAGS.threshold is not None and FLAGS["threshold_quantile"].present:
            raise ValueError("give --threshold or --threshold_quantile, not both")
        if FLAGS["threshold_quantile"].present:
            flag_defs.threshold_config()  # checks the value
        raw = files.read_json(config_path)
        runner.check_version(raw.pop(runner.VERSION_KEY, None), f"model dir {FLAGS.model_dir!r}")
        config = config_lib.from_dict(config_lib.RunConfig, raw)
        names = categories(FLAGS.model_dir)
        export_dir = FLAGS.export_dir or os.path.join(FLAGS.model_dir, "export")
        for name in names:
            reexport(FLAGS.model_dir, name, config, export_dir)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    runner.summarize_run(FLAGS.model_dir, config.train.task)


if __name__ == "__main__":
    app.run(main)
