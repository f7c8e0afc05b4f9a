"""The categories a run trains on, checked before anything trains: the dataset indexed (and for
CIFAR-10 and ELPV prepared once), every image and mask validated, and an optional labelled
validation set (:mod:`cutpaste_tf.driver` runs these for every training run).

:func:`resolve_categories` is the one way the package finds a dataset's categories: training
runs, the analyses of a trained run and the measurements (:func:`measured_category`) all use it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Mapping, Optional, Sequence

import tensorflow as tf

from cutpaste_tf import data as data_lib
from cutpaste_tf import files, rundir
from cutpaste_tf.config import RunConfig
from cutpaste_tf.data import cifar10, elpv
from cutpaste_tf.data import validate as validate_lib
from cutpaste_tf.evaluation import threshold as threshold_lib

# What a measurement runs on when it is asked for every category: testdata's object category.
DEFAULT_CATEGORY = "washer"


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """Where a run's images come from and how strictly they are checked; each field is the
    launcher flag of the same name (``categories`` is ``--category``)."""

    dataset: str = "mvtec"
    data_dir: Optional[str] = None
    categories: tuple[str, ...] = ("all",)
    category_kind: str = "object"
    # --dataset=folder
    train_dir: Optional[str] = None
    test_good_dir: Optional[str] = None
    test_defect_dirs: tuple[str, ...] = ()
    mask_dir: Optional[str] = None
    test_good_fraction: float = 0.2  # of train_dir, held out when there is no test_good_dir
    # --dataset=cifar10 / elpv
    source: Optional[str] = None
    heldout_fraction: float = 0.25
    split_seed: int = 0  # elpv, and folder without test_good_dir
    # Validation of every image and mask.
    min_image_size: int = 32
    max_image_pixels: int = 50_000_000
    decode_check: bool = True
    mask_threshold: float = 0.5
    progress: bool = True
    # An optional labelled validation set (one category).
    val_good_dir: Optional[str] = None
    val_defect_dirs: tuple[str, ...] = ()

    @property
    def all_categories(self) -> bool:
        return list(self.categories) in (["all"], [])


def resolve_categories(spec: InputSpec) -> list[data_lib.CategoryData]:
    """Indexes every requested category (all of them before any training starts)."""
    if spec.dataset in data_lib.LAYOUTS:
        return layout_categories(spec)
    if spec.dataset in ("cifar10", "elpv"):
        return prepared_categories(spec)
    if spec.dataset == "folder":
        if not spec.train_dir or not spec.test_defect_dirs:
            raise ValueError("dataset=folder needs train_dir and test_defect_dirs, and "
                             "test_good_dir or a test_good_fraction of train_dir held out")
        name = "custom" if spec.all_categories else spec.categories[0]
        return [data_lib.index_folders(name, spec.train_dir, spec.test_good_dir,
                                       list(spec.test_defect_dirs), spec.mask_dir,
                                       kind=spec.category_kind,
                                       test_good_fraction=spec.test_good_fraction,
                                       split_seed=spec.split_seed)]
    raise ValueError(f"dataset={spec.dataset} is not a dataset choice")


def layout_categories(spec: InputSpec) -> list[data_lib.CategoryData]:
    """--dataset=mvtec|visa|btad|mvtec_loco|kolektorsdd2: the dataset at --data_dir as
    published; --category=all lists the layout's categories."""
    layout = data_lib.LAYOUTS[spec.dataset]
    if not spec.data_dir:
        raise ValueError(f"data_dir is required (the root of the {layout.title} dataset)")
    names = (data_lib.layout_categories(spec.dataset, spec.data_dir) if spec.all_categories
             else list(spec.categories))
    return [data_lib.index_layout(spec.dataset, spec.data_dir, name, spec.category_kind)
            for name in names]


def measured_category(spec: InputSpec) -> data_lib.CategoryData:
    """The one category a measurement runs on (launch.benchmark, launch.accelerator_check,
    launch.diagnose): the first one ``spec`` asks for, else :data:`DEFAULT_CATEGORY`; from
    ``spec.data_dir``, else the shipped testdata/ (:func:`shipped_testdata`)."""
    name = DEFAULT_CATEGORY if spec.all_categories else spec.categories[0]
    return resolve_categories(dataclasses.replace(
        spec, categories=(name,), data_dir=spec.data_dir or shipped_testdata()))[0]


def shipped_testdata() -> str:
    """The ``testdata/`` folder shipped beside the package."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(os.path.dirname(package), "testdata")


def prepared_categories(spec: InputSpec) -> list[data_lib.CategoryData]:
    """--dataset=cifar10|elpv: writes the PNGs into --data_dir once, then indexes them."""
    if not spec.data_dir:
        raise ValueError(f"dataset={spec.dataset} needs data_dir: where its images are "
                         "written as PNGs once (and found on later runs)")
    if spec.dataset == "elpv":
        if not 0.0 < spec.heldout_fraction < 1.0:
            raise ValueError(f"heldout_fraction must be in (0, 1), got {spec.heldout_fraction}")
        elpv.prepare(spec.data_dir, spec.heldout_fraction, spec.split_seed)
        names = list(elpv.CELL_TYPES) if spec.all_categories else list(spec.categories)
        return [data_lib.index_mvtec(spec.data_dir, name) for name in names]
    if not spec.source and cifar10.read_manifest(spec.data_dir) is None:
        raise ValueError(f"dataset=cifar10: {spec.data_dir!r} is not prepared yet; give "
                         "source=<cifar-10-python.tar.gz or its extracted folder>")
    cifar10.prepare(spec.data_dir, spec.source)
    names = list(cifar10.CLASSES) if spec.all_categories else list(spec.categories)
    return [cifar10.index_class(spec.data_dir, name) for name in names]


def validate_categories(categories: Sequence[data_lib.CategoryData], spec: InputSpec,
                        image_size: tuple[int, int]) -> dict[str, str]:
    """Checks every image and mask of every category, and that no image is in two of a
    category's training, validation and test sets; prints counted warnings to stderr and one
    line per kind of mask conversion to stdout. Returns the hash of every image's bytes (path
    -> digest) for :func:`labelled_validation`."""
    if spec.min_image_size < 1 or spec.max_image_pixels < 1:
        raise ValueError("min_image_size and max_image_pixels must be positive")
    if not 0.0 < spec.mask_threshold <= 1.0:
        raise ValueError(f"mask_threshold must be in (0, 1], got {spec.mask_threshold}")
    errors, digests = [], {}
    for data in categories:  # every category, so that one run reports every problem
        try:
            report = data_lib.validate_category(
                data, min_size=spec.min_image_size, max_pixels=spec.max_image_pixels,
                decode=spec.decode_check, image_size=image_size,
                mask_threshold=spec.mask_threshold)
        except data_lib.DataError as e:
            errors.append(str(e))
            continue
        digests.update(report.digests)
        for line in report.warnings():
            print(f"warning: {line}", file=sys.stderr)
        for line in report.notes():
            print(line)
        if spec.progress:
            print(report.summary())
    if errors:
        raise data_lib.DataError("\n".join(errors))
    return digests


def labelled_validation(categories: Sequence[data_lib.CategoryData], spec: InputSpec,
                        digests: Optional[Mapping[str, str]] = None
                        ) -> Optional[tuple[list[str], list[int]]]:
    """(files, labels) of --val_good_dir and --val_defect_dirs, or None when not given.

    None of them may be a training or test image of the category (the same file or the same
    bytes); ``digests`` (from :func:`validate_categories`) saves reading those twice.
    """
    if not spec.val_good_dir and not spec.val_defect_dirs:
        return None
    if not spec.val_good_dir or not spec.val_defect_dirs:
        raise ValueError("val_good_dir and val_defect_dirs go together (a labelled "
                         "validation set needs normal and defective images)")
    if len(categories) != 1:
        raise ValueError(f"val_good_dir and val_defect_dirs hold one category's images, but "
                         f"{len(categories)} categories were requested; pick one with "
                         "category=<name>")
    paths, labels = [], []
    for label, folder in [(0, spec.val_good_dir)] + [(1, d) for d in spec.val_defect_dirs]:
        found = data_lib.list_images(folder)
        if not found:
            raise ValueError(f"validation folder {folder!r} does not exist or holds no images")
        paths += found
        labels += [label] * len(found)
    (data,) = categories
    known = dict(digests or {})
    known.update(validate_lib.hash_files(
        [p for p in (*data.train_files, *data.test_files, *paths)
         if p not in known]))
    problems = validate_lib.find_overlaps(
        {"training": data.train_files, "test": data.test_files,
         "labelled validation": paths}, known, involving="labelled validation")
    if problems:
        raise data_lib.DataError(validate_lib.format_problems(data.name, problems))
    return paths, labels


def record_test_split(categories: Sequence[data_lib.CategoryData], spec: InputSpec,
                      model_dir: str) -> None:
    """--dataset=folder without --test_good_dir: writes the held-out test normals into
    ``<model_dir>/<category>/test_split.json`` and says so in one line; a resumed run must
    find the same split there (same fraction, seed and images), else it is refused."""
    if spec.dataset != "folder" or spec.test_good_dir:
        return
    for data in categories:
        good = [p for p, label in zip(data.test_files, data.test_labels) if not label]
        split = {"train_dir": spec.train_dir, "test_good_fraction": spec.test_good_fraction,
                 "split_seed": spec.split_seed,
                 "train": sorted(os.path.basename(p) for p in data.train_files),
                 "test_good": sorted(os.path.basename(p) for p in good)}
        path = os.path.join(rundir.category_dir(model_dir, data.name), rundir.TEST_SPLIT_FILE)
        if tf.io.gfile.exists(path):
            _check_same_split(path, split)
            where = f"split reused from {path}"
        else:
            files.write_json(path, split)
            where = f"split in {path}"
        total = len(data.train_files) + len(good)
        print(f"[{data.name}] no --test_good_dir: {spec.test_good_fraction * 100:g}% of {total} "
              f"good images ({len(good)}, seed {spec.split_seed}) held out as test normals; "
              f"{where}")


def _check_same_split(path: str, split: dict) -> None:
    """Raises DataError naming what differs between the split recorded at ``path`` and
    ``split`` (the settings, or images added to or removed from the folder)."""
    try:
        recorded = files.read_json(path)
    except json.JSONDecodeError as e:
        raise data_lib.DataError(f"{path} is not valid JSON ({e}); use another model dir, or "
                                 "overwrite=True to start again") from None
    again = "; use those, another model dir, or overwrite=True to start again from scratch"
    for name in ("test_good_fraction", "split_seed"):
        if recorded.get(name) != split[name]:
            raise data_lib.DataError(f"{path}: the run's test normals were held out with "
                                     f"{name}={recorded.get(name)}, this run asks for "
                                     f"{name}={split[name]}{again}")
    before = set(recorded.get("train", [])) | set(recorded.get("test_good", []))
    now = set(split["train"]) | set(split["test_good"])
    if before != now:
        added, removed = sorted(now - before), sorted(before - now)
        raise data_lib.DataError(
            f"{path}: train_dir {split['train_dir']!r} has changed since its split was "
            f"recorded: {len(added)} image(s) added ({', '.join(added[:5]) or '-'}), "
            f"{len(removed)} removed ({', '.join(removed[:5]) or '-'}); restore them, or use "
            "another model dir, or overwrite=True to start again from scratch")
    if recorded.get("test_good") != split["test_good"]:
        raise data_lib.DataError(f"{path}: the recorded test normals differ from this run's "
                                 f"with the same settings{again}")


def check_holdout(categories: Sequence[data_lib.CategoryData], config: RunConfig) -> None:
    """Too few training images to hold ``config.threshold.val_fraction`` out fails here, before
    training, naming the category."""
    for data in categories:
        try:
            threshold_lib.split_holdout(data.train_files, config.threshold.val_fraction,
                                        config.train.seed, given=data.val_files)
        except ValueError as e:
            raise ValueError(f"category {data.name!r}: {e}") from None
