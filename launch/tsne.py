r"""Figure 3: t-SNE of a trained model's features for normal test images, real anomalies, and
CutPaste and Scar views of the normal training images.

    python -m launch.tsne --model_dir=runs/quickstart --data_dir=testdata --category=washer \
        [--tsne_perplexity=30] [--seed=0]

Writes ``<model_dir>/<category>/tsne.png`` and ``tsne.json`` (the 2-D points and their sets).
Needs matplotlib: ``pip install -e .[viz]``. Exit codes: 0 done, 2 bad flags or files.
"""

from __future__ import annotations

import os

import tensorflow as tf

from cutpaste_tf import files, plots, rundir
from cutpaste_tf.analysis import tsne
from cutpaste_tf.data import layouts
from cutpaste_tf.pipeline import trained
from launch import errors
from launch import flags as flag_defs

FLAGS = flag_defs.FLAGS


def main(argv: list[str]) -> None:
    flag_defs.start(argv, "launch.tsne")
    tf.get_logger().setLevel("ERROR")  # one trace per kind is expected, not a retracing bug
    with errors.reported(ValueError, FileNotFoundError, ImportError):
        plots.pyplot("The t-SNE figure")  # fail early and clearly without matplotlib
        if not FLAGS.model_dir:
            raise ValueError("--model_dir is required")
        if FLAGS.dataset not in layouts.LAYOUTS or not FLAGS.data_dir:
            raise ValueError("--data_dir is required: the dataset the model was trained on, in "
                             f"the layout of --dataset ({', '.join(layouts.LAYOUTS)})")
        if len(FLAGS.category) != 1 or FLAGS.category[0] == "all":
            raise ValueError(f"--category takes exactly one category, got "
                             f"{','.join(FLAGS.category) or 'none'}")
        if FLAGS.tsne_perplexity <= 0:
            raise ValueError(f"--tsne_perplexity must be positive, got {FLAGS.tsne_perplexity}")
        config = rundir.load_run_config(FLAGS.model_dir)
        name = FLAGS.category[0]
        model, _ = trained.load_trained(FLAGS.model_dir, name, config)
        data = layouts.index_layout(FLAGS.dataset, FLAGS.data_dir, name, FLAGS.category_kind)
        size, batch = config.train.image_size, config.eval_batch_size
        normal_files, anomalous_files = tsne.split_test(data.test_files, data.test_labels)
        feats, labels = tsne.embedding_sets(
            model, trained.load_images(normal_files, size, batch),
            trained.load_images(anomalous_files, size, batch),
            trained.load_images(data.train_files, size, batch), config.density.feature,
            config.density.normalize_features, config.train.augment, FLAGS.seed, batch)
        points = tsne.tsne_2d(feats, FLAGS.seed, FLAGS.tsne_perplexity)
        title = (f"{name}: t-SNE of the {config.density.feature} features "
                 f"({config.train.task} model)")
        out = os.path.join(FLAGS.model_dir, name)
        files.write_bytes(os.path.join(out, "tsne.png"), tsne.plot_png(points, labels, title))
        files.write_json(os.path.join(out, "tsne.json"), {
            "sets": list(tsne.SETS), "labels": labels.tolist(), "points": points.tolist(),
            "counts": tsne.counts(labels), "seed": FLAGS.seed,
            "perplexity_asked": FLAGS.tsne_perplexity})
    counts = ", ".join(f"{k} {v}" for k, v in tsne.counts(labels).items())
    print(f"[{name}] t-SNE of {len(labels)} images ({counts}): {os.path.join(out, 'tsne.png')}")


if __name__ == "__main__":
    flag_defs.run(main)
