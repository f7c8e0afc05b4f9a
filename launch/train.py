"""Train -> density -> evaluate -> export for one category, several, or all.

    python -m launch.train --flagfile=configs/3way.flags --data_dir=/data/mvtec_ad \
        --model_dir=runs/3way --category=bottle

Everything that can be checked before training is checked first: flags, the dataset folders of
every requested category, every image and mask in them (decoded once; see
``cutpaste_tf.data.validate``), and the model dir. The resolved config (JSON) and the flags (a
flagfile that reproduces the run) are written into the model dir.
"""

from __future__ import annotations

import os
import sys

from absl import app

from cutpaste_tf import data as data_lib
from cutpaste_tf import files
from cutpaste_tf.data import cifar10, elpv
from cutpaste_tf.evaluation import evaluate
from cutpaste_tf.evaluation import threshold as threshold_lib
from cutpaste_tf.models import efficientnet
from cutpaste_tf.pipeline import runner
from cutpaste_tf.reporting import report
from cutpaste_tf.training import train
from launch import distribute
from launch import flags as flag_defs

FLAGS = flag_defs.FLAGS


def resolve_categories() -> list[data_lib.CategoryData]:
    """Indexes every requested category (all of them before any training starts)."""
    if FLAGS.dataset in data_lib.LAYOUTS:
        return layout_categories()
    if FLAGS.dataset in ("cifar10", "elpv"):
        return prepared_categories()
    if FLAGS.dataset == "folder":
        missing = [f"--{n}" for n in ("train_dir", "test_good_dir") if not getattr(FLAGS, n)]
        if missing or not FLAGS.test_defect_dirs:
            raise ValueError("--dataset=folder needs --train_dir, --test_good_dir and "
                             "--test_defect_dirs")
        name = FLAGS.category[0] if FLAGS.category not in (["all"], []) else "custom"
        return [data_lib.index_folders(name, FLAGS.train_dir, FLAGS.test_good_dir,
                                       FLAGS.test_defect_dirs, FLAGS.mask_dir,
                                       kind=FLAGS.category_kind)]
    raise ValueError(f"--dataset={FLAGS.dataset} is not a dataset choice")


def layout_categories() -> list[data_lib.CategoryData]:
    """--dataset=mvtec|visa|btad|mvtec_loco|kolektorsdd2: the dataset at --data_dir as
    published; --category=all lists the layout's categories."""
    layout = data_lib.LAYOUTS[FLAGS.dataset]
    if not FLAGS.data_dir:
        raise ValueError(f"--data_dir is required (the root of the {layout.title} dataset)")
    names = FLAGS.category
    if names in (["all"], []):
        names = data_lib.layout_categories(FLAGS.dataset, FLAGS.data_dir)
    categories = [data_lib.index_layout(FLAGS.dataset, FLAGS.data_dir, name,
                                        FLAGS.category_kind) for name in names]
    for data in categories:
        if data.val_files:
            print(f"[{data.name}] the dataset's {len(data.val_files)} normal validation images "
                  "set the decision threshold; --val_fraction is not applied")
    return categories


def prepared_categories() -> list[data_lib.CategoryData]:
    """--dataset=cifar10|elpv: writes the PNGs into --data_dir once, then indexes them."""
    if not FLAGS.data_dir:
        raise ValueError(f"--dataset={FLAGS.dataset} needs --data_dir: where its images are "
                         "written as PNGs once (and found on later runs)")
    names = FLAGS.category
    if FLAGS.dataset == "elpv":
        if not 0.0 < FLAGS.heldout_fraction < 1.0:
            raise ValueError(f"--heldout_fraction must be in (0, 1), got {FLAGS.heldout_fraction}")
        elpv.prepare(FLAGS.data_dir, FLAGS.heldout_fraction, FLAGS.split_seed)
        names = list(elpv.CELL_TYPES) if names in (["all"], []) else names
        return [data_lib.index_mvtec(FLAGS.data_dir, name) for name in names]
    if not FLAGS.source and cifar10.read_manifest(FLAGS.data_dir) is None:
        raise ValueError(f"--dataset=cifar10: {FLAGS.data_dir!r} is not prepared yet; give "
                         "--source=<cifar-10-python.tar.gz or its extracted folder>")
    cifar10.prepare(FLAGS.data_dir, FLAGS.source)
    names = list(cifar10.CLASSES) if names in (["all"], []) else names
    return [cifar10.index_class(FLAGS.data_dir, name) for name in names]


def validate_categories(categories: list[data_lib.CategoryData],
                        image_size: tuple[int, int]) -> None:
    """Checks every image and mask of every category; prints counted warnings to stderr and
    one line per kind of mask conversion to stdout."""
    if FLAGS.min_image_size < 1 or FLAGS.max_image_pixels < 1:
        raise ValueError("--min_image_size and --max_image_pixels must be positive")
    if not 0.0 < FLAGS.mask_threshold <= 1.0:
        raise ValueError(f"--mask_threshold must be in (0, 1], got {FLAGS.mask_threshold}")
    errors = []
    for data in categories:  # every category, so that one run reports every problem
        try:
            report = data_lib.validate_category(
                data, min_size=FLAGS.min_image_size, max_pixels=FLAGS.max_image_pixels,
                decode=FLAGS.decode_check, image_size=image_size,
                mask_threshold=FLAGS.mask_threshold)
        except data_lib.DataError as e:
            errors.append(str(e))
            continue
        for line in report.warnings():
            print(f"warning: {line}", file=sys.stderr)
        for line in report.notes():
            print(line)
        if FLAGS.progress:
            print(report.summary())
    if errors:
        raise data_lib.DataError("\n".join(errors))


def labelled_validation(categories: list) -> "tuple[list[str], list[int]] | None":
    """(files, labels) of --val_good_dir and --val_defect_dirs, or None when not given."""
    if not FLAGS.val_good_dir and not FLAGS.val_defect_dirs:
        return None
    if not FLAGS.val_good_dir or not FLAGS.val_defect_dirs:
        raise ValueError("--val_good_dir and --val_defect_dirs go together (a labelled "
                         "validation set needs normal and defective images)")
    if len(categories) != 1:
        raise ValueError(f"--val_good_dir/--val_defect_dirs hold one category's images, but "
                         f"{len(categories)} categories were requested; pick one with --category")
    paths, labels = [], []
    for label, folder in [(0, FLAGS.val_good_dir)] + [(1, d) for d in FLAGS.val_defect_dirs]:
        found = data_lib.list_images(folder)
        if not found:
            raise ValueError(f"validation folder {folder!r} does not exist or holds no images")
        paths += found
        labels += [label] * len(found)
    return paths, labels


def main(argv: list[str]) -> None:
    flag_defs.start(argv)
    try:
        if not FLAGS.model_dir:
            raise ValueError("--model_dir is required")
        config = flag_defs.run_config()
        if config.model.backbone_weights == "imagenet":  # fetched now, not after the checks
            efficientnet.imagenet_weights_file()
        strategy = distribute.make_strategy(FLAGS.strategy, FLAGS.tpu)
        runner.check_batch(config, strategy.num_replicas_in_sync)
        categories = resolve_categories()
        validate_categories(categories, config.train.image_size)
        validation = labelled_validation(categories)
        for data in categories:  # too few images to hold some out fails here, not after training
            try:
                threshold_lib.split_holdout(data.train_files, config.threshold.val_fraction,
                                            config.train.seed, given=data.val_files)
            except ValueError as e:
                raise ValueError(f"category {data.name!r}: --{e}") from None
        chief = train.is_chief(strategy)
        if chief:
            runner.check_model_dir(FLAGS.model_dir, config, overwrite=FLAGS.overwrite)
    except ValueError as e:  # DataError is a ValueError too.
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    if chief:
        files.write_text(os.path.join(FLAGS.model_dir, "flags.txt"), FLAGS.flags_into_string())
    export_dir = FLAGS.export_dir or os.path.join(FLAGS.model_dir, "export")
    if export_dir.lower() == "none":
        export_dir = None
    for data in categories:
        try:
            runner.run_category(data, config, FLAGS.model_dir, export_dir, FLAGS.export_version,
                                verbose=FLAGS.progress, strategy=strategy,
                                validation=validation)
        except (train.TrainingError, evaluate.EvaluationError) as e:
            print(f"error: [{data.name}] {e}", file=sys.stderr)
            sys.exit(1)
        except efficientnet.WeightsError as e:  # a weights file that exists but does not load
            print(f"error: [{data.name}] {e}", file=sys.stderr)
            sys.exit(2)
    if not chief:
        return
    table = runner.summarize_run(FLAGS.model_dir, config.train.task)
    print(table)
    print(f"Results: {os.path.join(FLAGS.model_dir, 'results.json')}")
    if export_dir:
        print(f"SavedModels: {export_dir}/<category>/{FLAGS.export_version}")
    print_report(FLAGS.model_dir)


def print_report(model_dir: str) -> None:
    """Writes the HTML report and prints its path, or how to get it without matplotlib."""
    try:
        path = report.write_report(model_dir)
    except ImportError:
        print("Report: pip install -e .[viz], then "
              f"python -m launch.report --model_dir={model_dir}")
        return
    print(f"Report: {path}")


if __name__ == "__main__":
    app.run(main)
