"""Labelled validation defects against a trained run: choosing settings without test labels.

    python -m launch.validate --model_dir=runs/x --data_dir=data/elpv [--category=poly] \\
        [--validation_dir=path/to/defects]

For each trained category (``--category``, default all in the model dir) the model and its
fitted density score the normal training images the run held out (train with
``--val_fraction`` > 0) against labelled defect images that are in neither the training nor the
test set: one subfolder per kind of defect, by default ``<data_dir>/<category>/validation``
(``--dataset=elpv`` writes its uncertain cells there: ``probable``, defect probability 2/3, and
``possible``, 1/3). Prints the AUROC per kind and over all kinds, and writes
``validation.json`` and ``validation.md`` into the model dir. No test image is read.
Exit codes: 0 done, 2 bad flags or files.
"""

from __future__ import annotations

from cutpaste_tf.analysis import labelled_validation
from launch import errors
from launch import flags as flag_defs

FLAGS = flag_defs.FLAGS


def main(argv: list[str]) -> None:
    flag_defs.start(argv, "launch.validate")
    with errors.reported(ValueError, FileNotFoundError):
        table, path = labelled_validation.validate_run(FLAGS.model_dir, FLAGS.category,
                                                       FLAGS.data_dir, FLAGS.validation_dir)
    print(table)
    print(f"Results: {path}")


if __name__ == "__main__":
    flag_defs.run(main)
