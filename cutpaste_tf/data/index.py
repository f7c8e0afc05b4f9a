"""Finding the images of one category: the MVTec AD layout and a generic folder layout.

Both produce a :class:`CategoryData`: lists of file paths and labels, checked up front so that a
wrong path or an empty folder fails with a clear message before anything is built. A folder
dataset without a folder of normal test images holds a seeded fraction of its normal training
images out as test normals (:func:`split_good`).

MVTec AD layout::

    <data_dir>/<category>/train/good/*.png
    <data_dir>/<category>/test/good/*.png
    <data_dir>/<category>/test/<defect>/*.png
    <data_dir>/<category>/ground_truth/<defect>/<stem>_mask.png   (or .jpg, .bmp, .tif, ...)

A dataset in this layout may carry a ``categories.json`` at its root that says, for categories
the paper does not know, whether each is a texture or an object and whether objects are aligned:
``{"fabric": {"kind": "texture", "aligned": false}}``.

VisA, BTAD, MVTec LOCO AD and KolektorSDD2 in their own layouts: :mod:`cutpaste_tf.data.layouts`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from cutpaste_tf import storage
from cutpaste_tf.data.mvtec import MVTEC_ALIGNED, MVTEC_KINDS

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
# Masks may also be TIFFs (read by cutpaste_tf.data.masks); PNG is looked for first.
MASK_EXTENSIONS = IMAGE_EXTENSIONS + (".tif", ".tiff")
CATEGORIES_FILE = "categories.json"
# Beside train/ and test/: images kept apart from both (labelled defects per kind for
# launch.validate; MVTec LOCO keeps normal images there, in good/).
VALIDATION_FOLDER = "validation"


@dataclasses.dataclass(frozen=True)
class CategoryData:
    """The files of one category. Test label 0 is normal, 1 anomalous."""

    name: str
    kind: str
    aligned: bool
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    test_labels: tuple[int, ...]
    test_defects: tuple[str, ...]
    # Per test image: None, a mask path, or a tuple of mask paths merged by OR (MVTec LOCO AD
    # gives one folder of masks per defective image).
    mask_files: tuple[Union[None, str, tuple[str, ...]], ...]
    # Files in the image folders that are not images by their name (skipped, counted in a
    # warning by cutpaste_tf.data.validate).
    ignored_files: tuple[str, ...] = ()
    # The dataset's own normal validation images (MVTec LOCO AD's validation/good): when given,
    # they set the decision threshold instead of a held-out fraction of train_files.
    val_files: tuple[str, ...] = ()

    @property
    def defect_types(self) -> list[str]:
        return sorted({d for d, label in zip(self.test_defects, self.test_labels) if label})


class DataError(ValueError):
    """A dataset path or folder that cannot be used, with the reason in the message."""


def list_images(folder: str) -> list[str]:
    """Sorted image paths directly inside ``folder`` (empty if it does not exist)."""
    return _scan(folder)[0]


def _scan(folder: str, extensions: Sequence[str] = IMAGE_EXTENSIONS
          ) -> tuple[list[str], list[str]]:
    """(image files, other files) directly inside ``folder``, sorted; subfolders are left out."""
    if not tf.io.gfile.isdir(folder):
        return [], []
    images, others = [], []
    for name in sorted(tf.io.gfile.listdir(folder)):
        path = os.path.join(folder, name.rstrip("/"))
        if name.lower().endswith(tuple(extensions)):
            images.append(path)
        elif not name.endswith("/") and not tf.io.gfile.isdir(path):
            others.append(path)
    return images, others


def mvtec_categories(data_dir: str) -> list[str]:
    """Category folders of an MVTec-layout dataset: those with a ``train/good`` folder."""
    _require_dir(data_dir, "data directory")
    names = sorted(n.rstrip("/") for n in tf.io.gfile.listdir(data_dir))
    return [n for n in names if tf.io.gfile.isdir(os.path.join(data_dir, n, "train", "good"))]


def category_info(data_dir: str, category: str,
                  default_kind: str = "object") -> tuple[str, bool]:
    """(kind, aligned) of a category, from ``categories.json`` or the paper's lists; a category
    neither knows (MPDD's, say) is ``(default_kind, False)``."""
    if default_kind not in ("texture", "object"):
        raise DataError(f"kind must be 'texture' or 'object', got {default_kind!r}")
    path = os.path.join(data_dir, CATEGORIES_FILE)
    if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path) as f:
            try:
                entries = json.load(f)
            except json.JSONDecodeError as e:
                raise DataError(f"{path} is not valid JSON: {e}") from e
        if category in entries:
            entry = entries[category]
            kind = entry.get("kind")
            if kind not in ("texture", "object"):
                raise DataError(f"{path}: {category!r} needs \"kind\": \"texture\" or \"object\", "
                                f"got {kind!r}")
            return kind, bool(entry.get("aligned", False))
    if category in MVTEC_KINDS:
        return MVTEC_KINDS[category], category in MVTEC_ALIGNED
    return default_kind, False


def index_mvtec(data_dir: str, category: str, default_kind: str = "object") -> CategoryData:
    """Indexes one category of an MVTec-AD-layout dataset, failing early on anything missing.

    ``default_kind`` is the kind of a category that neither ``categories.json`` nor the paper
    classifies (see :func:`category_info`).
    """
    available = mvtec_categories(data_dir)
    if category not in available:
        hint = f"available: {', '.join(available)}" if available else (
            "no folder there has a train/good subfolder; is this the MVTec AD root?")
        raise DataError(f"category {category!r} not found in data directory {data_dir!r}; {hint}")
    root = os.path.join(data_dir, category)
    ignored: list[str] = []
    train = _require_images(os.path.join(root, "train", "good"), "training", ignored)
    test_root = os.path.join(root, "test")
    _require_dir(test_root, "test directory")
    files, labels, defects, masks = [], [], [], []
    for defect in sorted(n.rstrip("/") for n in tf.io.gfile.listdir(test_root)):
        folder = os.path.join(test_root, defect)
        if not tf.io.gfile.isdir(folder):
            continue
        what = "normal test" if defect == "good" else "defective test"
        for path in _require_images(folder, what, ignored):
            is_good = defect == "good"
            files.append(path)
            labels.append(0 if is_good else 1)
            defects.append(defect)
            masks.append(None if is_good else find_mask(os.path.join(root, "ground_truth",
                                                                      defect), path, ("_mask",)))
    gt_root = os.path.join(root, "ground_truth")
    if tf.io.gfile.isdir(gt_root):
        for defect in sorted(n.rstrip("/") for n in tf.io.gfile.listdir(gt_root)):
            ignored += _scan(os.path.join(gt_root, defect), MASK_EXTENSIONS)[1]
    kind, aligned = category_info(data_dir, category, default_kind)
    return _checked(CategoryData(category, kind, aligned, tuple(train), tuple(files),
                                 tuple(labels), tuple(defects), tuple(masks), tuple(ignored)),
                    test_root)


def split_good(files: Sequence[str], fraction: float, seed: int,
               min_train: int = 2) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(training, held-out test normals) of normal images ``files``, by ``seed``: ``round(fraction
    * n)`` of them (at least one) held out; both keep the files' order."""
    if not 0.0 < fraction < 1.0:
        raise DataError(f"test_good_fraction must be in (0, 1), got {fraction}")
    count = max(1, int(round(fraction * len(files))))
    if len(files) - count < min_train:
        raise DataError(f"test_good_fraction={fraction} of {len(files)} good images leaves "
                        f"{len(files) - count} to train on; need at least {min_train}")
    held = set(np.random.default_rng(seed).permutation(len(files))[:count].tolist())
    return (tuple(f for i, f in enumerate(files) if i not in held),
            tuple(f for i, f in enumerate(files) if i in held))


def index_folders(name: str, train_dir: str, test_good_dir: Optional[str],
                  test_defect_dirs: Sequence[str], mask_dir: Optional[str] = None,
                  kind: str = "object", aligned: bool = False, test_good_fraction: float = 0.2,
                  split_seed: int = 0) -> CategoryData:
    """Indexes a generic dataset: a folder of normal training images, a folder of normal test
    images and one or more folders of defective test images (the folder name is the defect type).
    Without ``test_good_dir``, :func:`split_good` holds ``test_good_fraction`` of the training
    folder's images out (by ``split_seed``) as the normal test images.
    Masks, if any, are ``<mask_dir>/<stem>_mask.<ext>`` or ``<mask_dir>/<stem>.<ext>``
    (``ext`` one of MASK_EXTENSIONS, PNG first).
    """
    if kind not in ("texture", "object"):
        raise DataError(f"kind must be 'texture' or 'object', got {kind!r}")
    ignored: list[str] = []
    train = _require_images(train_dir, "training", ignored)
    if test_good_dir:
        good = _require_images(test_good_dir, "normal test", ignored)
    else:
        try:
            train, good = split_good(train, test_good_fraction, split_seed)
        except DataError as e:
            raise DataError(f"{e} (train_dir {train_dir!r}, no test_good_dir)") from None
    files, labels, defects, masks = [], [], [], []
    for path in good:
        files.append(path), labels.append(0), defects.append("good"), masks.append(None)
    if not test_defect_dirs:
        raise DataError("no defective test folders given; AUROC needs defective test images")
    for folder in test_defect_dirs:
        defect = os.path.basename(os.path.normpath(folder))
        for path in _require_images(folder, "defective test", ignored):
            files.append(path), labels.append(1), defects.append(defect)
            masks.append(find_mask(mask_dir, path) if mask_dir else None)
    return _checked(CategoryData(name, kind, aligned, tuple(train), tuple(files), tuple(labels),
                                 tuple(defects), tuple(masks), tuple(ignored)),
                    test_good_dir or train_dir)


def find_mask(mask_dir: str, image_path: str,
               suffixes: Sequence[str] = ("_mask", "")) -> Optional[str]:
    """``<mask_dir>/<stem><suffix><ext>`` of the first suffix and extension that exists."""
    stem = os.path.splitext(os.path.basename(image_path))[0]
    for name in (f"{stem}{suffix}{ext}" for suffix in suffixes for ext in MASK_EXTENSIONS):
        candidate = os.path.join(mask_dir, name)
        if tf.io.gfile.exists(candidate):
            return candidate
    return None


def _checked(data: CategoryData, where: str) -> CategoryData:
    if 0 not in data.test_labels or 1 not in data.test_labels:
        missing = "normal (good)" if 0 not in data.test_labels else "defective"
        raise DataError(f"no {missing} test images for category {data.name!r} under {where!r}; "
                        "AUROC needs both")
    return data


def _require_dir(path: str, what: str) -> None:
    if not tf.io.gfile.isdir(path):
        cause = storage.problem(path)  # isdir says False for a bucket it cannot reach
        if cause:
            raise DataError(f"{what} {path!r}: {cause}")
        raise DataError(f"{what} {path!r} does not exist or is not a directory")


def _require_images(folder: str, what: str, ignored: Optional[list] = None) -> list[str]:
    """The images in ``folder``, which must exist and hold some; other files go to ``ignored``."""
    _require_dir(folder, f"{what} image folder")
    files, others = _scan(folder)
    if not files:
        found = f"; it holds only {len(others)} other file(s)" if others else ""
        raise DataError(f"{what} image folder {folder!r} holds no images "
                        f"(looked for {', '.join(IMAGE_EXTENSIONS)}){found}")
    if ignored is not None:
        ignored += others
    return files
