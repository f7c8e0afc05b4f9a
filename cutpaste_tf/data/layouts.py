"""The public inspection datasets in their own published layouts, each indexed into a
:class:`~cutpaste_tf.data.index.CategoryData`.

Normal test images have the defect type ``good`` in every layout. None of these categories is
in the paper's lists, so each takes its texture/object kind from the caller (``kind``; not
aligned). Masks are only located here and read later (:mod:`cutpaste_tf.data.masks`). VisA's
masks are not 0/255 images but 0 and small integers, which VisA's own scripts binarise with
``mask != 0``; the mask reader does the same for any mask whose values never reach half its
full scale (a label mask).

VisA (``visa``)::

    <root>/split_csv/1cls.csv    object,split,label,image,mask; split train|test,
                                 label normal|anomaly, paths relative to <root>, mask empty
                                 for normal rows
    <root>/<object>/Data/Images/{Normal,Anomaly}/*.JPG
    <root>/<object>/Data/Masks/Anomaly/*.png

  Training uses the ``train``/``normal`` rows; defective test images have the defect type
  ``anomaly`` (the split file names no finer type).

BTAD (``btad``)::

    <root>/<product>/train/ok/*     (any image extension: BMP or PNG)
    <root>/<product>/test/ok/*
    <root>/<product>/test/ko/*
    <root>/<product>/ground_truth/ko/<stem>.<png, bmp or another mask extension>

MVTec LOCO AD (``mvtec_loco``)::

    <root>/<category>/train/good/*.png
    <root>/<category>/validation/good/*.png      normal images for the decision threshold
    <root>/<category>/test/good/*.png
    <root>/<category>/test/{logical,structural}_anomalies/*.png
    <root>/<category>/ground_truth/<type>/<image stem>/000.png, 001.png, ...

  One folder of masks per defective image; several masks are given as a tuple of paths (the
  mask reader merges them by OR). ``validation/good`` becomes ``CategoryData.val_files``.

KolektorSDD2 (``kolektorsdd2``, one category)::

    <root>/train/<id>.png, <root>/train/<id>_GT.png
    <root>/test/<id>.png,  <root>/test/<id>_GT.png

  An image is defective when its mask holds a non-zero pixel (each mask is decoded once here;
  nothing is cached). Training uses only the normal training images.

MVTec AD and datasets in its layout (MPDD, ...) are ``mvtec``: :func:`index.index_mvtec`.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from typing import Callable, Union

import tensorflow as tf

from cutpaste_tf import storage
from cutpaste_tf.data import index, masks
from cutpaste_tf.data.index import CategoryData, DataError

MaskEntry = Union[None, str, tuple[str, ...]]

VISA_CATEGORIES = ("candle", "capsules", "cashew", "chewinggum", "fryum", "macaroni1",
                   "macaroni2", "pcb1", "pcb2", "pcb3", "pcb4", "pipe_fryum")
VISA_SPLIT = os.path.join("split_csv", "1cls.csv")
VISA_COLUMNS = ("object", "split", "label", "image", "mask")
BTAD_CATEGORIES = ("01", "02", "03")
LOCO_CATEGORIES = ("breakfast_box", "juice_bottle", "pushpins", "screw_bag",
                   "splicing_connectors")
KOLEKTOR_NAME = "kolektorsdd2"
KOLEKTOR_MASK_SUFFIX = "_GT.png"


@dataclasses.dataclass(frozen=True)
class Layout:
    """How to list and index the categories of one dataset layout."""

    title: str
    categories: Callable[[str], list[str]]
    index: Callable[[str, str, str], CategoryData]  # (root, category, kind)


def _missing(layout: str, expects: str, path: str) -> DataError:
    return DataError(f"dataset={layout} expects {expects}; not found: {path}")


def _require(path: str, layout: str, expects: str, is_dir: bool = True) -> None:
    try:
        found = tf.io.gfile.isdir(path) if is_dir else tf.io.gfile.exists(path)
    except tf.errors.OpError as e:  # exists raises what it could not find out
        raise DataError(f"{path}: {storage.describe(e, path)}") from e
    if not found:
        cause = storage.problem(path)  # isdir says False for a bucket it cannot reach
        if cause:
            raise DataError(f"{path}: {cause}")
        raise _missing(layout, expects, path)


def _subfolders(folder: str) -> list[str]:
    return sorted(n.rstrip("/") for n in tf.io.gfile.listdir(folder)
                  if tf.io.gfile.isdir(os.path.join(folder, n.rstrip("/"))))


def _masks_in(folder: str) -> list[str]:
    """The mask files (any of ``index.MASK_EXTENSIONS``) directly inside ``folder``, sorted."""
    return index._scan(folder, index.MASK_EXTENSIONS)[0]


def _stems(folder: str) -> dict[str, str]:
    """{file stem: path} of the mask files directly inside ``folder`` (empty if it is missing);
    a PNG wins over another file with the same stem."""
    found: dict[str, str] = {}
    for path in sorted(_masks_in(folder), key=lambda p: not p.lower().endswith(".png")):
        found.setdefault(os.path.splitext(os.path.basename(path))[0], path)
    return found


def _categories_with(root: str, layout: str, expects: str, *parts: str) -> list[str]:
    """Subfolders of ``root`` that hold ``parts``; an error naming the layout if none does."""
    _require(root, layout, expects)
    names = [n for n in _subfolders(root) if tf.io.gfile.isdir(os.path.join(root, n, *parts))]
    if not names:
        raise DataError(f"dataset={layout} expects {expects}; no folder under {root} has "
                        f"{'/'.join(parts)}")
    return names


def _unknown(layout: str, category: str, root: str, available: list[str]) -> DataError:
    return DataError(f"dataset={layout}: category {category!r} not found under {root}; "
                     f"available: {', '.join(available) or 'none'}")


def _folder_images(folder: str, layout: str, expects: str, what: str,
                   ignored: list[str]) -> list[str]:
    _require(folder, layout, expects)
    return index._require_images(folder, what, ignored)


def _test_split(test_root: str, good: str, mask_of: Callable[[str, str], MaskEntry],
                ignored: list[str]) -> tuple[list, list, list, list]:
    """(files, labels, defects, masks) of a test folder with one subfolder per defect type and
    ``good`` for the normal images (listed first, recorded as "good"); ``mask_of(defect, path)``
    finds a defective image's mask."""
    files, labels, defects, masks = [], [], [], []
    for defect in sorted(_subfolders(test_root), key=lambda d: (d != good, d)):
        is_good = defect == good
        images = index._require_images(os.path.join(test_root, defect),
                                       "normal test" if is_good else "defective test", ignored)
        for path in images:
            files.append(path)
            labels.append(0 if is_good else 1)
            defects.append("good" if is_good else defect)
            masks.append(None if is_good else mask_of(defect, path))
    return files, labels, defects, masks


# --------------------------------------------------------------------------- VisA
def _visa_rows(root: str) -> list[dict[str, str]]:
    path = os.path.join(root, VISA_SPLIT)
    _require(path, "visa", "<root>/split_csv/1cls.csv", is_dir=False)
    with tf.io.gfile.GFile(path) as f:
        reader = csv.DictReader(f)
        missing = [c for c in VISA_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: dataset=visa expects the columns "
                            f"{','.join(VISA_COLUMNS)}; missing {', '.join(missing)} "
                            f"(found {','.join(reader.fieldnames or [])})")
        return [{k: (row[k] or "").strip() for k in VISA_COLUMNS} for row in reader]


def visa_categories(root: str) -> list[str]:
    """The objects named in VisA's ``split_csv/1cls.csv``."""
    return sorted({row["object"] for row in _visa_rows(root)})


def index_visa(root: str, category: str, kind: str = "object") -> CategoryData:
    """Indexes one VisA object from ``split_csv/1cls.csv`` (paths relative to ``root``)."""
    rows = _visa_rows(root)
    mine = [r for r in rows if r["object"] == category]
    if not mine:
        raise _unknown("visa", category, root, sorted({r["object"] for r in rows}))
    train, tests = [], []
    for row in mine:
        if row["split"] not in ("train", "test") or row["label"] not in ("normal", "anomaly"):
            raise DataError(f"{os.path.join(root, VISA_SPLIT)}: row {row} has split "
                            f"{row['split']!r} and label {row['label']!r}; dataset=visa "
                            "expects split train|test and label normal|anomaly")
        image = os.path.join(root, row["image"])
        if row["split"] == "train":
            if row["label"] == "normal":  # never train on a defective image
                train.append(image)
            continue
        label = int(row["label"] == "anomaly")
        mask = os.path.join(root, row["mask"]) if label and row["mask"] else None
        tests.append((label, image, mask))
    if not train:
        raise DataError(f"dataset=visa: {os.path.join(root, VISA_SPLIT)} lists no normal "
                        f"training images for {category!r}")
    first = sorted(train)[0]
    _require(first, "visa", "<root>/<image path from split_csv/1cls.csv>", is_dir=False)
    tests.sort()
    return index._checked(CategoryData(
        category, kind, False, tuple(sorted(train)), tuple(t[1] for t in tests),
        tuple(t[0] for t in tests), tuple("anomaly" if t[0] else "good" for t in tests),
        tuple(t[2] for t in tests)), os.path.join(root, VISA_SPLIT))


# --------------------------------------------------------------------------- BTAD, MVTec LOCO AD
def _index_folders(layout: str, unit: str, root: str, category: str, kind: str, normal: str,
                   mask_of: Callable[[str, str, str], MaskEntry],
                   validation: bool = False) -> CategoryData:
    """One category: ``train/<normal>``, ``validation/<normal>`` (``val_files``, if
    ``validation``), ``test/<normal>`` and ``test/<defect>``; ``mask_of(category folder, defect,
    image)`` finds a mask; messages call a category ``unit`` ("product", "category")."""
    folder, base = os.path.join(root, category), f"<root>/<{unit}>"
    if not tf.io.gfile.isdir(folder):
        raise _unknown(layout, category, root, _categories_with(
            root, layout, f"{base}/train/{normal}", "train", normal))
    ignored: list[str] = []
    train = _folder_images(os.path.join(folder, "train", normal), layout,
                           f"{base}/train/{normal}", "training", ignored)
    val_folder = index.VALIDATION_FOLDER
    val = _folder_images(os.path.join(folder, val_folder, normal), layout,
                         f"{base}/{val_folder}/{normal}", "validation", ignored) if validation else []
    test_root = os.path.join(folder, "test")
    _require(os.path.join(test_root, normal), layout, f"{base}/test/{normal}")
    files, labels, defects, masks = _test_split(
        test_root, normal, lambda defect, path: mask_of(folder, defect, path), ignored)
    return index._checked(CategoryData(category, kind, False, tuple(train), tuple(files),
                                       tuple(labels), tuple(defects), tuple(masks),
                                       tuple(ignored), val_files=tuple(val)), test_root)


def btad_categories(root: str) -> list[str]:
    """BTAD product folders: those with a ``train/ok`` folder."""
    return _categories_with(root, "btad", "<root>/<product>/train/ok", "train", "ok")


def index_btad(root: str, category: str, kind: str = "object") -> CategoryData:
    """Indexes one BTAD product: ``ok`` is normal, every other test folder a defect type."""
    found: dict[str, dict[str, str]] = {}  # defect -> {stem: mask}, read once per folder

    def mask_of(folder: str, defect: str, path: str) -> MaskEntry:
        if defect not in found:
            found[defect] = _stems(os.path.join(folder, "ground_truth", defect))
        return found[defect].get(os.path.splitext(os.path.basename(path))[0])

    return _index_folders("btad", "product", root, category, kind, "ok", mask_of)


def loco_categories(root: str) -> list[str]:
    """MVTec LOCO AD category folders: those with a ``train/good`` folder."""
    return _categories_with(root, "mvtec_loco", "<root>/<category>/train/good", "train", "good")


def _loco_mask(folder: str, defect: str, path: str) -> MaskEntry:
    """The masks in ``ground_truth/<defect>/<image stem>/``: a path, several, or None."""
    found = tuple(_masks_in(os.path.join(folder, "ground_truth", defect,
                                         os.path.splitext(os.path.basename(path))[0])))
    if not found:
        return None
    return found[0] if len(found) == 1 else found


def index_mvtec_loco(root: str, category: str, kind: str = "object") -> CategoryData:
    """Indexes one MVTec LOCO AD category; ``validation/good`` becomes ``val_files``."""
    return _index_folders("mvtec_loco", "category", root, category, kind, "good", _loco_mask,
                          validation=True)


# --------------------------------------------------------------------------- KolektorSDD2
def kolektor_categories(root: str) -> list[str]:
    """KolektorSDD2 is one category."""
    _require(os.path.join(root, "train"), "kolektorsdd2", "<root>/train")
    return [KOLEKTOR_NAME]


def _kolektor_split(root: str, split: str) -> list[tuple[str, str, bool]]:
    """(image, mask, mask is empty) of every image of ``<root>/<split>``."""
    folder = os.path.join(root, split)
    _require(folder, "kolektorsdd2", f"<root>/{split} with <id>.png and <id>_GT.png")
    names = set(n.rstrip("/") for n in tf.io.gfile.listdir(folder))
    out = []
    for name in sorted(names):
        if name.endswith(KOLEKTOR_MASK_SUFFIX) or not name.lower().endswith(
                index.IMAGE_EXTENSIONS):
            continue
        mask_name = os.path.splitext(name)[0] + KOLEKTOR_MASK_SUFFIX
        mask = os.path.join(folder, mask_name)
        if mask_name not in names:
            raise _missing("kolektorsdd2", f"<root>/{split}/<id>{KOLEKTOR_MASK_SUFFIX} beside "
                           f"every <root>/{split}/<id>.png", mask)
        # Empty: no pixel marked, read by the one mask reader (any format it takes).
        out.append((os.path.join(folder, name), mask, not masks.read_file(mask).values.any()))
    if not out:
        raise DataError(f"dataset=kolektorsdd2 expects <root>/{split}/<id>.png images; "
                        f"{folder} holds none")
    return out


def index_kolektorsdd2(root: str, category: str = KOLEKTOR_NAME,
                       kind: str = "object") -> CategoryData:
    """Indexes KolektorSDD2: labels from whether each ``_GT.png`` mask is empty."""
    if category != KOLEKTOR_NAME:
        raise _unknown("kolektorsdd2", category, root, [KOLEKTOR_NAME])
    train = [image for image, _, empty in _kolektor_split(root, "train") if empty]
    if not train:
        raise DataError(f"dataset=kolektorsdd2: every image in {os.path.join(root, 'train')} "
                        "has a non-empty mask; no normal training images")
    test = _kolektor_split(root, "test")
    return index._checked(CategoryData(
        category, kind, False, tuple(train), tuple(t[0] for t in test),
        tuple(0 if t[2] else 1 for t in test), tuple("good" if t[2] else "defect" for t in test),
        tuple(None if t[2] else t[1] for t in test)), os.path.join(root, "test"))


# --------------------------------------------------------------------------- registry
def _mvtec_categories(root: str) -> list[str]:
    names = index.mvtec_categories(root)
    if not names:
        raise DataError(f"dataset=mvtec expects <root>/<category>/train/good; no folder "
                        f"under {root} has train/good; is it the MVTec AD root?")
    return names


LAYOUTS: dict[str, Layout] = {
    "mvtec": Layout("MVTec AD", _mvtec_categories,
                    lambda root, c, kind: index.index_mvtec(root, c, default_kind=kind)),
    "visa": Layout("VisA", visa_categories, index_visa),
    "btad": Layout("BTAD", btad_categories, index_btad),
    "mvtec_loco": Layout("MVTec LOCO AD", loco_categories, index_mvtec_loco),
    "kolektorsdd2": Layout("KolektorSDD2", kolektor_categories, index_kolektorsdd2),
}


def layout_categories(layout: str, root: str) -> list[str]:
    """Every category of the dataset at ``root`` in ``layout`` (a key of :data:`LAYOUTS`)."""
    return _layout(layout).categories(root)


def index_layout(layout: str, root: str, category: str, kind: str = "object") -> CategoryData:
    """Indexes one category of the dataset at ``root`` in ``layout``; ``kind`` (texture or
    object) is used for categories the dataset and the paper do not classify."""
    if kind not in ("texture", "object"):
        raise DataError(f"kind must be 'texture' or 'object', got {kind!r}")
    return _layout(layout).index(root, category, kind)


def _layout(layout: str) -> Layout:
    if layout not in LAYOUTS:
        raise DataError(f"unknown dataset layout {layout!r}; one of {', '.join(LAYOUTS)}")
    return LAYOUTS[layout]

