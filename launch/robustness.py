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
The test itself: :mod:`cutpaste_tf.analysis.robustness`.
Exit codes: 0 done, 2 bad flags or files.
"""

from __future__ import annotations

import os

from cutpaste_tf import rundir
from cutpaste_tf.analysis import robustness
from cutpaste_tf.reporting import report
from launch import configs, errors
from launch import flags as flag_defs

FLAGS = flag_defs.FLAGS


def main(argv: list[str]) -> None:
    flag_defs.start(argv, "launch.robustness")
    with errors.reported(ValueError, FileNotFoundError):
        if not FLAGS.model_dir:
            raise ValueError("--model_dir is required")
        tables = robustness.stress_run(
            FLAGS.model_dir, FLAGS.category, configs.robustness_config(), FLAGS.data_dir,
            FLAGS.dataset, FLAGS.category_kind, FLAGS.validation_dir)
    print(tables)
    print(f"Results: {os.path.join(FLAGS.model_dir, rundir.RESULTS_TABLE)} and "
          "<category>/robustness.json")
    try:
        print(f"Report: {report.write_report(FLAGS.model_dir)}")
    except ImportError:
        print("Report: pip install -e .[viz], then python -m launch.report "
              f"--model_dir={FLAGS.model_dir}")


if __name__ == "__main__":
    flag_defs.run(main)
