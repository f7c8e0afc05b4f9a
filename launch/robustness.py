r"""The drift stress test of a trained run: how its normal images score when the capture shifts.

    python -m launch.robustness --model_dir=runs/x [--data_dir=data] [--category=bottle] \
        [--stress_shifts=default|photometric|brightness:-0.1,...] [--validation_dir=...]

For each trained category (``--category``, default all in the model dir) the normal training
images the run held out (``--val_fraction``; without them, every training image, scored out of
fold, which needs ``--data_dir``) are shifted in brightness, contrast, gamma, colour, position,
angle, focus, noise and JPEG quality, and scored with the run's model, density and threshold
(``launch.train`` runs the same test after evaluation unless ``--nostress_test``). Printed and
written per shift: the share of shifted normals above the threshold, the AUROC of shifted normals
against unshifted anomalies (labelled defects in ``--validation_dir`` or
``<data_dir>/<category>/validation`` if there, else synthetic shapes on the normals), and how
far the median normal score moves. Writes ``<category>/robustness.json``, updates the run's
results.json / results.md and, with matplotlib, its HTML report. No test image is read.
Exit codes: 0 done, 2 bad flags or files.
"""

from __future__ import annotations

import dataclasses
import os

from cutpaste_tf import config as config_lib
from cutpaste_tf.analysis import robustness
from cutpaste_tf.data import layouts
from cutpaste_tf.pipeline import rundir, runner, summary
from cutpaste_tf.reporting import robustness as tables
from launch import configs, errors
from launch import flags as flag_defs
from launch.train import print_report

FLAGS = flag_defs.FLAGS


def plan() -> tuple[config_lib.RunConfig, list[tuple[str, object, list[str]]]]:
    """Checks the flags and inputs: (config with the flags' stress settings, [(category, its
    training files or None, labelled defect files)]) before any model is loaded."""
    if not FLAGS.model_dir:
        raise ValueError("--model_dir is required")
    config = rundir.load_run_config(FLAGS.model_dir)
    config = dataclasses.replace(config, robustness=configs.robustness_config())
    kind = runner.kind_of(config)
    names = rundir.requested_categories(FLAGS.model_dir, FLAGS.category, kind.DENSITY_FILE)
    if FLAGS.validation_dir and len(names) > 1:
        raise ValueError(f"--validation_dir holds one category's defects, but {len(names)} "
                         f"categories are asked for ({', '.join(names)}); pass --category")
    work = []
    for name in names:
        train_files = None
        if FLAGS.data_dir and FLAGS.dataset in layouts.LAYOUTS:
            data = layouts.index_layout(FLAGS.dataset, FLAGS.data_dir, name, FLAGS.category_kind)
            train_files = list(runner.hold_out(data, config)[0].train_files)
        folder = FLAGS.validation_dir or robustness.default_validation_dir(FLAGS.data_dir, name)
        work.append((name, train_files, robustness.defect_files(folder)))
    return config, work


def main(argv: list[str]) -> None:
    flag_defs.start(argv, "launch.robustness")
    with errors.reported(ValueError, FileNotFoundError):
        config, work = plan()
        for name, train_files, defects in work:
            result = robustness.stress_trained(FLAGS.model_dir, name, config, train_files,
                                               defects)
            print(tables.table_markdown(name, result))
    summary.summarize_run(FLAGS.model_dir, config.train.task)
    print(f"Results: {os.path.join(FLAGS.model_dir, rundir.RESULTS_TABLE)} and "
          f"<category>/robustness.json")
    print_report(FLAGS.model_dir)


if __name__ == "__main__":
    flag_defs.run(main)
