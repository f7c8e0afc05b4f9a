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

import os

import tensorflow as tf

from cutpaste_tf import files, rundir
from cutpaste_tf.analysis import synthetic_benchmark as bench
from cutpaste_tf.config import RunConfig
from cutpaste_tf.data import index, layouts
from cutpaste_tf.ops import synthetic
from cutpaste_tf.ops.synthetic import SyntheticConfig
from cutpaste_tf.pipeline import trained
from launch import errors
from launch import flags as flag_defs

FLAGS = flag_defs.FLAGS
RESULTS = "synthetic.json"
TABLE = "synthetic.md"
# --synthetic_on -> (results file, table file, what the normal images are).
OUTPUTS = {"test": (RESULTS, TABLE, "normal test images"),
           "heldout": ("synthetic_heldout.json", "synthetic_heldout.md",
                       "held-out training images")}
EXAMPLES = "synthetic_examples.png"


def plan() -> tuple[RunConfig, list[tuple[index.CategoryData, list[str], list[str]]]]:
    """Checks every flag and input and returns (config, [(category data, source files, normal
    files)]); the normal files are the ones ``--synthetic_on`` names."""
    if not FLAGS.model_dir:
        raise ValueError("--model_dir is required")
    if FLAGS.dataset not in layouts.LAYOUTS or not FLAGS.data_dir:
        raise ValueError("--data_dir is required: the dataset the model was trained on, in the "
                         f"layout of --dataset ({', '.join(layouts.LAYOUTS)})")
    if FLAGS.synthetic_copies < 1:
        raise ValueError(f"--synthetic_copies must be at least 1, got {FLAGS.synthetic_copies}")
    config = rundir.load_run_config(FLAGS.model_dir)
    names = rundir.requested_categories(FLAGS.model_dir, FLAGS.category)
    available = layouts.layout_categories(FLAGS.dataset, FLAGS.data_dir)
    natural = None
    if FLAGS.natural_dir:
        natural = index.list_images(FLAGS.natural_dir)
        if not natural:
            raise ValueError(f"--natural_dir={FLAGS.natural_dir} holds no images "
                             "(PNG, JPEG or BMP directly inside it)")
    work = []
    for name in names:
        data = layouts.index_layout(FLAGS.dataset, FLAGS.data_dir, name, FLAGS.category_kind)
        normal = normal_files(data)  # read now, so a missing held-out set fails before a model
        sources = natural or bench.default_sources(
            FLAGS.data_dir, name, available,
            lambda n: list(layouts.index_layout(FLAGS.dataset, FLAGS.data_dir, n,
                                                FLAGS.category_kind).train_files))
        work.append((data, bench.spread(sources, bench.MAX_SOURCES), normal))
    return config, work


def normal_files(data: index.CategoryData) -> list[str]:
    """The normal images ``--synthetic_on`` names: the test set's, or the run's held-out ones."""
    if FLAGS.synthetic_on == "heldout":
        return rundir.held_out_files(rundir.category_dir(FLAGS.model_dir, data.name))
    return [p for p, y in zip(data.test_files, data.test_labels) if y == 0]


def main(argv: list[str]) -> None:
    flag_defs.start(argv, "launch.synthetic")
    tf.get_logger().setLevel("ERROR")  # one trace per kind is expected, not a retracing bug
    with errors.reported(ValueError, FileNotFoundError):
        config, work = plan()
        digits = synthetic.digit_templates(SyntheticConfig().digit_size)
        results_file, table_file, images = OUTPUTS[FLAGS.synthetic_on]
        path = os.path.join(FLAGS.model_dir, results_file)
        results = rundir.read_category_results(path)
        size, batch = config.train.image_size, config.eval_batch_size
        for data, source_files, normal_paths in work:
            model, estimator = trained.load_trained(FLAGS.model_dir, data.name, config)
            normal = trained.load_images(normal_paths, size, batch)
            sources = trained.load_images(source_files, size, batch)
            print(f"[{data.name}] {len(normal)} {images} x {FLAGS.synthetic_copies} "
                  f"cop{'y' if FLAGS.synthetic_copies == 1 else 'ies'} per kind; natural "
                  f"patches from {len(sources)} images")
            aurocs = bench.synthetic_auroc(model, estimator, normal, config.density.feature,
                                           sources, digits, seed=FLAGS.seed,
                                           copies=FLAGS.synthetic_copies, batch_size=batch)
            results[data.name] = {"auroc": aurocs, "average": bench.averages(aurocs),
                                  "num_normal": len(normal), "copies": FLAGS.synthetic_copies,
                                  "seed": FLAGS.seed, "natural_sources": source_files,
                                  "images": FLAGS.synthetic_on}
            if FLAGS.synthetic_examples:
                grid = bench.example_grid(normal, sources, digits, seed=FLAGS.seed)
                files.write_bytes(os.path.join(FLAGS.model_dir, data.name, EXAMPLES), grid)
    table = bench.table6_markdown({n: r["auroc"] for n, r in sorted(results.items())},
                                   f"Synthetic anomalies on {images}, AUROC (%), "
                                   f"{config.train.task} model")
    files.write_json(path, {"task": config.train.task, "kinds": list(bench.KINDS),
                            "images": FLAGS.synthetic_on, "categories": results})
    files.write_text(os.path.join(FLAGS.model_dir, table_file), table + "\n")
    print(table)
    print(f"Results: {path}")


if __name__ == "__main__":
    flag_defs.run(main)
