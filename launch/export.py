"""Re-export trained categories without training: a new threshold, a new version, TFLite.

    python -m launch.export --model_dir=runs/quickstart --category=washer --threshold=31.5
    python -m launch.export --model_dir=runs/quickstart --category=washer --threshold_quantile=0.99

Rebuilds the network from ``<model_dir>/config.json``, restores the newest checkpoint and the
fitted density (``<category>/density.npz``; ``dense_density.npz`` for a patch model) and
writes a SavedModel with the threshold: ``--threshold`` sets a value; ``--threshold_quantile``
recomputes it from the normal scores stored in ``<category>/threshold.json`` (held-out or
out-of-fold, as at training time); neither keeps the stored one. The export goes to the next
version (``--export_version`` to choose), so a running TF Serving picks it up.
``threshold.json``, the category's ``results.json`` and the run's ``results.json`` are updated
(:func:`cutpaste_tf.driver.reexport`). Exit codes: 0 done, 2 bad flags or missing files.
"""

from __future__ import annotations

from cutpaste_tf import driver, rundir
from cutpaste_tf.config import ThresholdConfig
from launch import errors
from launch import flags as flag_defs

FLAGS = flag_defs.FLAGS


def quantile() -> "float | None":
    """--threshold_quantile when it was given (its default is training's), else None."""
    return FLAGS.threshold_quantile if FLAGS["threshold_quantile"].present else None


def main(argv: list[str]) -> None:
    flag_defs.start(argv, "launch.export")
    with errors.reported(ValueError, FileNotFoundError):
        if not FLAGS.model_dir:
            raise ValueError("--model_dir is required")
        rundir.config_file(FLAGS.model_dir)  # a model dir at all, before the other flags
        if FLAGS.threshold is not None and FLAGS["threshold_quantile"].present:
            raise ValueError("give --threshold or --threshold_quantile, not both")
        if FLAGS["threshold_quantile"].present:
            ThresholdConfig(quantile=FLAGS.threshold_quantile)  # checks the value
        driver.reexport(
            FLAGS.model_dir, FLAGS.category, FLAGS.export_dir, FLAGS.threshold, quantile(),
            FLAGS.export_version if FLAGS["export_version"].present else None, FLAGS.tflite)


if __name__ == "__main__":
    flag_defs.run(main)
