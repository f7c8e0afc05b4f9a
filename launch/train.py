r"""Train -> density -> evaluate -> export for one category, several, or all.

    python -m launch.train --flagfile=configs/3way.flags --data_dir=/data/mvtec_ad \
        --model_dir=runs/3way --category=bottle

Everything that can be checked before training is checked first: flags, the dataset folders of
every requested category, every image and mask in them (decoded once; see
``cutpaste_tf.data.validate``), and the model dir. The resolved config (JSON) and the flags (a
flagfile that reproduces the run) are written into the model dir.

A category that fails after that (training, a later stage, its files) is recorded and the
others go on; the run then ends with status 1 and a line naming what failed, and running the
same command again tries the failed categories again (``cutpaste_tf.pipeline.failures``).
"""

from __future__ import annotations

import os
import sys

from cutpaste_tf import console, files, rundir
from cutpaste_tf.config import RunConfig
from cutpaste_tf.models import efficientnet
from cutpaste_tf.pipeline import build, failures, inputs, runner
from cutpaste_tf.reporting import report, summary
from cutpaste_tf.training import distribute, train
from launch import configs, errors
from launch import flags as flag_defs

FLAGS = flag_defs.FLAGS


def untrained_warning(config: RunConfig) -> str:
    """A warning line for a run whose features will be a random network's (no training steps
    and no initial backbone weights; such a run is allowed, e.g. as a baseline), else ""."""
    if config.train.epochs == 0 and not config.model.backbone_weights:
        return ("warning: --epochs=0 with a randomly initialised backbone: the features are "
                "untrained; the AUROC will not measure the method")
    return ""


def prepare() -> tuple:
    """Everything checked before training (flags, dataset, every image, the model dir):
    (config, strategy, categories, labelled validation or None, whether this is the chief)."""
    if not FLAGS.model_dir:
        raise ValueError("--model_dir is required")
    config = configs.run_config()
    if untrained_warning(config):
        print(untrained_warning(config), file=sys.stderr, flush=True)
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
    flag_defs.start(argv, "launch.train")
    with errors.reported(ValueError):  # DataError and WeightsError are ValueErrors too
        config, strategy, categories, validation, chief = prepare()
    if chief:
        files.write_text(os.path.join(FLAGS.model_dir, rundir.FLAGS_FILE),
                         flag_defs.flags_into_string("launch.train"))
    export_dir = FLAGS.export_dir or rundir.default_export_dir(FLAGS.model_dir)
    if export_dir.lower() == "none":
        export_dir = None
    failed = {}
    for data in categories:
        where = f"[{data.name}] "
        # A weights file that exists but does not load fails every category alike: exit 2.
        with errors.reported(efficientnet.WeightsError, where=where):
            error = failures.attempt(
                lambda: runner.run_category(
                    data, config, FLAGS.model_dir, export_dir, FLAGS.export_version,
                    verbose=FLAGS.progress, strategy=strategy, validation=validation,
                    progress_every_s=FLAGS.progress_every_s),
                FLAGS.model_dir, data.name, record=chief, stop=(efficientnet.WeightsError,))
        if error is not None:  # recorded; the other categories go on
            failed[data.name] = errors.category_failed(where, error)
    if chief:
        table = summary.summarize_run(FLAGS.model_dir, config.train.task)
        print(table)
        print(f"Results: {os.path.join(FLAGS.model_dir, rundir.RESULTS_FILE)}")
        exported = [data.name for data in categories if data.name not in failed]
        if export_dir and exported:
            print(saved_models_line(export_dir, exported, FLAGS.export_version))
        print_report(FLAGS.model_dir)
    # Exit 1 when a category failed (its cause is in results.md and <category>/failed.json).
    errors.end_with_failures(failed, len(categories),
                             os.path.join(FLAGS.model_dir, rundir.RESULTS_TABLE))


def saved_models_line(export_dir: str, names: list[str], version: int) -> str:
    """The end line naming the exports: the folder itself for one category, else the pattern
    and the categories that fill it."""
    if len(names) == 1:
        return f"SavedModels: {os.path.join(export_dir, names[0], str(version))}"
    return (f"SavedModels: {os.path.join(export_dir, '<category>', str(version))} for "
            f"<category> in {', '.join(names)}")


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
    flag_defs.run(main)
