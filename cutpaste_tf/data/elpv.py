"""The ELPV solar-cell electroluminescence dataset as two MVTec-layout categories.

ELPV (Buerhop-Lutz et al. 2018, Deitsch et al. 2019; pip package ``elpv-dataset``,
CC BY-NC-SA 4.0) holds 2,624 grey 300x300 images of mono- and polycrystalline solar cells, each
labelled with the probability (0, 1/3, 2/3, 1) that the cell is defective. As a one-class task:

* normal = cells with probability 0, defective = cells with probability 1; the uncertain cells
  (1/3, 2/3) are left out;
* the two cell types are separate categories, ``mono`` and ``poly``: their appearance differs
  (polycrystalline cells show a grain texture that monocrystalline ones lack), and one density
  over both would model the type rather than the defects;
* per type, a seeded ``test_fraction`` of the normal cells is held out as normal test images;
  the rest train. All defective cells of the type are test images;
* the uncertain cells are labelled defects that no test figure uses, so they are written apart
  as a validation set for choosing settings (``launch.validate``): ``probable`` (2/3) and
  ``possible`` (1/3).

:func:`prepare` writes this split once as PNGs in the MVTec AD layout, so that ``index_mvtec``
and everything after it apply unchanged::

    <data_dir>/{mono,poly}/train/good/cellNNNN.png
    <data_dir>/{mono,poly}/test/{good,defective}/cellNNNN.png
    <data_dir>/{mono,poly}/validation/{probable,possible}/cellNNNN.png
    <data_dir>/categories.json, prepared.json (split seed, fraction, counts)

``cellNNNN`` is the image's name in the package (row NNNN of its labels.csv).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import tensorflow as tf

from cutpaste_tf import files
from cutpaste_tf.data import prepared
from cutpaste_tf.data.index import CATEGORIES_FILE, VALIDATION_FOLDER, DataError

CELL_TYPES = ("mono", "poly")
DEFECT = "defective"
# Validation kind -> the defect probability of its cells.
UNCERTAIN = {"probable": 2 / 3, "possible": 1 / 3}
LICENSE = "CC BY-NC-SA 4.0"


def load_package() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images uint8 [N, 300, 300], defect probabilities [N], cell types [N]) from the
    installed ``elpv-dataset`` package."""
    try:
        from elpv_dataset.utils import load_dataset
    except ImportError:
        raise DataError("dataset=elpv needs the elpv-dataset package: pip install "
                        "elpv-dataset (or pip install -e .[elpv])") from None
    images, probs, types = load_dataset()
    return np.asarray(images), np.asarray(probs, np.float64), np.asarray(types).astype(str)


def package_version() -> str:
    try:
        from elpv_dataset.__about__ import __version__
    except ImportError:
        return "unknown"
    return __version__


def split_cells(probs: np.ndarray, types: np.ndarray, test_fraction: float,
                seed: int) -> dict[str, dict[str, list[int]]]:
    """Row indices per cell type: ``train`` and ``test_good`` (probability 0, split by the
    seed), ``test_defective`` (probability 1), and the uncertain cells, kept out of both:
    ``validation_probable`` (2/3) and ``validation_possible`` (1/3)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"elpv test fraction must be in (0, 1), got {test_fraction}")
    if len(probs) != len(types):
        raise DataError(f"ELPV: {len(probs)} probabilities but {len(types)} cell types")
    unknown = sorted(set(types) - set(CELL_TYPES))
    if unknown:
        raise DataError(f"ELPV: unknown cell type(s) {unknown}; expected {CELL_TYPES}")
    splits = {}
    for number, cell_type in enumerate(CELL_TYPES):
        of_type = types == cell_type
        normal = np.flatnonzero(of_type & (probs == 0.0))
        defective = np.flatnonzero(of_type & (probs == 1.0))
        if len(normal) < 2 or not len(defective):
            raise DataError(f"ELPV {cell_type}: {len(normal)} normal and {len(defective)} "
                            "defective cells; need at least 2 and 1")
        order = np.random.default_rng([seed, number]).permutation(len(normal))
        n_test = min(max(1, round(test_fraction * len(normal))), len(normal) - 1)
        splits[cell_type] = {"train": sorted(normal[order[n_test:]].tolist()),
                             "test_good": sorted(normal[order[:n_test]].tolist()),
                             "test_defective": defective.tolist()}
        for kind, p in UNCERTAIN.items():
            rows = np.flatnonzero(of_type & np.isclose(probs, p, atol=1e-3))
            splits[cell_type][f"validation_{kind}"] = rows.tolist()
    return splits


def write_split(out_dir: str, images: np.ndarray, probs: np.ndarray, types: np.ndarray,
                test_fraction: float, seed: int) -> dict[str, Any]:
    """Writes the split as PNGs in the MVTec layout under ``out_dir``; returns the counts."""
    if images.ndim != 3 or images.dtype != np.uint8 or len(images) != len(probs):
        raise DataError(f"ELPV: expected uint8 images [N, H, W] for {len(probs)} cells, got "
                        f"{images.dtype} {images.shape}")
    splits = split_cells(probs, types, test_fraction, seed)
    folders = {"train": ("train", "good"), "test_good": ("test", "good"),
               "test_defective": ("test", DEFECT),
               **{f"validation_{kind}": (VALIDATION_FOLDER, kind) for kind in UNCERTAIN}}
    for cell_type, parts in splits.items():
        for part, rows in parts.items():
            folder = os.path.join(out_dir, cell_type, *folders[part])
            tf.io.gfile.makedirs(folder)
            for row in rows:  # (an empty validation kind leaves its folder empty)
                prepared.write_png(os.path.join(folder, f"cell{row + 1:04d}.png"), images[row])
    files.write_json(os.path.join(out_dir, CATEGORIES_FILE),
                     {t: {"kind": "object", "aligned": True} for t in CELL_TYPES})
    uncertain = int(np.sum((probs > 0.0) & (probs < 1.0)))
    return {"counts": {t: {k: len(v) for k, v in parts.items()} for t, parts in splits.items()},
            "excluded_uncertain": uncertain, "license": LICENSE}


def prepare(data_dir: str, test_fraction: float, seed: int) -> dict[str, Any]:
    """Prepares ``data_dir`` from the installed package unless already done with these
    settings; returns its manifest."""
    settings = {"dataset": "elpv", "split_seed": seed, "test_fraction": test_fraction}

    def write(tmp_dir: str) -> dict[str, Any]:
        images, probs, types = load_package()
        counts = write_split(tmp_dir, images, probs, types, test_fraction, seed)
        return {**counts, "source": f"elpv-dataset {package_version()}"}

    return prepared.prepare_once(data_dir, settings, write)
