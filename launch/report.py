"""Writes the HTML report of a finished run (a few MB; links to the full-size heatmaps).

    python -m launch.report --model_dir=runs/quickstart [--report_path=report.html]
    python -m launch.report --experiment_dir=runs/3way_5seeds   (a launch.experiment dir)

Needs matplotlib: ``pip install -e .[viz]``.
"""

from __future__ import annotations

import os

from cutpaste_tf import rundir
from cutpaste_tf.reporting import experiment_report, report
from launch import errors
from launch import flags as flag_defs

FLAGS = flag_defs.FLAGS


def main(argv: list[str]) -> None:
    flag_defs.start(argv, "launch.report")
    if FLAGS.experiment_dir:  # an experiment of launch.experiment: its tables and ROC curves
        with errors.reported(ImportError, ValueError, status=1,
                             where=f"--experiment_dir={FLAGS.experiment_dir}: "):
            path = experiment_report.write_experiment_report(FLAGS.experiment_dir,
                                                             FLAGS.report_path)
        print(f"Report: {path}")
        return
    if not FLAGS.model_dir or not os.path.exists(os.path.join(FLAGS.model_dir, rundir.RESULTS_FILE)):
        errors.fail(f"--model_dir={FLAGS.model_dir} holds no results.json of a finished run",
                    status=1)
    with errors.reported(ImportError, status=1):
        path = report.write_report(FLAGS.model_dir, FLAGS.report_path)
    print(f"Report: {path}")


if __name__ == "__main__":
    flag_defs.run(main)
