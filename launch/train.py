"""Train -> density -> evaluate -> export for one category, several, or all.

    python -m launch.train --flagfile=configs/3way.flags --data_dir=/data/mvtec_ad \
        --model_dir=runs/3way --category=bottle

Everything that can be checked before training is checked first: flags, the dataset folders of
every requested category, every image and mask in them (decoded once; see
``cutpaste_tf.data.validate``), and the model dir. The resolved config (JSON) and the flags (a
flagfile that reproduces the run) are written into the model dir.
"""

from __future__ import annotations

import os

from absl import app

from cutpaste_tf import console, files
from cutpaste_tf.evaluation import evaluate
from cutpaste_tf.models import efficientnet
from cutpaste_tf.pipeline import build, inputs, rundir, runner, summary
from cutpaste_tf.reporting import report
from cutpaste_tf.training import train
from launch import configs, distribute, errors
from launch import flags as flag_defs

FLAGS = flag_defs.FLAGS


def prepare() -> tuple:
    """Everything checked before training (flags, dataset, every image, the model dir):
    (config, strategy, categories, labelled validation or None, whether this is the chief)."""
    if not FLAGS.model_dir:
        raise ValueError("--model_dir is required")
    config = configs.run_config()
    strategy = distribute.make_strategy(FLAGS.strategy, FLAGS.tpu)
    distribute.check_accelerator(strategy, FLAGS.require_accelerator)
    if config.model.backbone_weights == "imagenet":  # fetched now, not after the checks
        efficientnet.imagenet_weights_file()
    build.check_batch(config, strategy.num_replicas_in_sync)
    spec = configs.input_spec()
    categories = inputs.resolve_categories(spec)
    digests = inputs.validate_categories(categories, spec, config.train.image_size)
    validation = inputs.labelled_validation(categories, spec, digests)
    inputs.check_holdout(categories, config)
    chief = train.is_chief(strategy)
    if chief:
        rundir.check_model_dir(FLAGS.model_dir, config, overwrite=FLAGS.overwrite)
        inputs.record_test_split(categories, spec, FLAGS.model_dir)
    return config, strategy, categories, validation, chief


def main(argv: list[str]) -> None:
    flag_defs.start(argv)
    with errors.reported(ValueError):  # DataError and WeightsError are ValueErrors too
        config, strategy, categories, validation, chief = prepare()
    if chief:
        files.write_text(os.path.join(FLAGS.model_dir, rundir.FLAGS_FILE),
                         FLAGS.flags_into_string())
    export_dir = FLAGS.export_dir or rundir.default_export_dir(FLAGS.model_dir)
    if export_dir.lower() == "none":
        export_dir = None
    for data in categories:
        where = f"[{data.name}] "
        # Exit 1: training or evaluation failed; 2: a weights file that exists but does not load.
        with errors.reported(train.TrainingError, evaluate.EvaluationError, status=1,
                             where=where), errors.reported(efficientnet.WeightsError, where=where):
            runner.run_category(data, config, FLAGS.model_dir, export_dir, FLAGS.export_version,
                                verbose=FLAGS.progress, strategy=strategy,
                                validation=validation, progress_every_s=FLAGS.progress_every_s)
    if not chief:
        return
    table = summary.summarize_run(FLAGS.model_dir, config.train.task)
    print(table)
    print(f"Results: {os.path.join(FLAGS.model_dir, rundir.RESULTS_FILE)}")
    if export_dir:
        print(f"SavedModels: {export_dir}/<category>/{FLAGS.export_version}")
    print_report(FLAGS.model_dir)


def print_report(model_dir: str) -> None:
    """Writes the HTML report and prints its path, or how to get it without matplotlib."""
    try:
        with console.stage("", "HTML report", FLAGS.progress):
            path = report.write_report(model_dir)
    except ImportError:
        print("Report: pip install -e .[viz], then "
              f"python -m launch.report --model_dir={model_dir}")
        return
    print(f"Report: {path}")


if __name__ == "__main__":
    app.run(main)
