r"""Figure 3: t-SNE of a trained model's features for normal test images, real anomalies, and
CutPaste and Scar views of the normal training images.

    python -m launch.tsne --model_dir=runs/quickstart --data_dir=testdata --category=washer \
        [--tsne_perplexity=30] [--seed=0]

Writes ``<model_dir>/<category>/tsne.png`` and ``tsne.json`` (the 2-D points and their sets).
Needs matplotlib: ``pip install -e .[viz]``. Exit codes: 0 done, 2 bad flags or files.
"""

from __future__ import annotations

import tensorflow as tf

from cutpaste_tf.analysis import tsne
from launch import configs, errors
from launch import flags as flag_defs

FLAGS = flag_defs.FLAGS


def main(argv: list[str]) -> None:
    flag_defs.start(argv, "launch.tsne")
    tf.get_logger().setLevel("ERROR")  # one trace per kind is expected, not a retracing bug
    with errors.reported(ValueError, FileNotFoundError, ImportError):
        tsne.tsne_run(FLAGS.model_dir, configs.dataset_spec(), FLAGS.tsne_perplexity,
                      FLAGS.seed)


if __name__ == "__main__":
    flag_defs.run(main)
