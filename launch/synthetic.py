r"""Synthetic anomalies (Sec. 5.3, Table 6) against a trained run.

    python -m launch.synthetic --model_dir=runs/quickstart --data_dir=testdata \
        [--category=washer] [--natural_dir=some/images] [--synthetic_copies=1] [--seed=0] \
        [--synthetic_on=heldout]

For each trained category (``--category``, default all in the model dir) the model and its
fitted density score the normal test images against the same images with a digit, square,
ellipse or heart pasted on, filled with a random colour or a natural-image patch, and print the
AUROC per kind beside the paper's Table 6. Natural patches come from ``--natural_dir`` or, by
default, the training images of the dataset's other categories. Writes ``synthetic.json`` and
``synthetic.md`` into the model dir and ``<category>/synthetic_examples.png`` (one row per kind).

``--synthetic_on=heldout`` alters the training images the run held out (``--val_fraction``)
instead of the test set's normal images, and writes ``synthetic_heldout.json`` and
``synthetic_heldout.md``: a score that reads no test image and no defect label, for choosing
settings on data without labelled defects (docs/experiments.md).
Exit codes: 0 done, 2 bad flags or files.
"""

from __future__ import annotations

import tensorflow as tf

from cutpaste_tf.analysis import synthetic_benchmark as bench
from launch import configs, errors
from launch import flags as flag_defs

FLAGS = flag_defs.FLAGS


def main(argv: list[str]) -> None:
    flag_defs.start(argv, "launch.synthetic")
    tf.get_logger().setLevel("ERROR")  # one trace per kind is expected, not a retracing bug
    with errors.reported(ValueError, FileNotFoundError):
        table, path = bench.evaluate_run(
            FLAGS.model_dir, configs.dataset_spec(), FLAGS.natural_dir, FLAGS.synthetic_copies,
            FLAGS.synthetic_on, FLAGS.seed, FLAGS.synthetic_examples)
    print(table)
    print(f"Results: {path}")


if __name__ == "__main__":
    flag_defs.run(main)
