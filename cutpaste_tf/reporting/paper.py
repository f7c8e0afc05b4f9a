"""Published numbers from the CutPaste paper (Li et al., CVPR 2021), for comparison tables.

All values are AUROC in percent, transcribed from the paper text (shared/paper/cutpaste_cvpr2021.txt);
``tests/reporting/test_paper.py`` re-parses the paper's table lines (kept verbatim in
``tests/reporting/paper_tables.txt``) and checks every number here against them.

Table 1 (image-level detection, 5 seeds, mean and standard error) has these proxy-task columns:

====================  =========================================================
key                   paper column
====================  =========================================================
``"rotation"``        Rotation
``"cutout"``          Cutout
``"scar_cutout"``     Scar (the Cutout-style scar baseline)
``"cutpaste"``        CutPaste
``"scar"``            CutPaste (scar)
``"3way"``            CutPaste (3-way)
``"ensemble"``        Ensemble of 5 CutPaste (3-way) models (a single number)
====================  =========================================================

Table 2 is the pixel-level localisation AUROC of the patch-based CutPaste (3-way) model.
Table 4 (Sec. 5.1) gives texture / object / all averages of the Cutout variants ``"cutout"``
(grey), ``"cutout_mean"``, ``"cutout_color"``, of ``"confetti"`` and of ``"cutpaste"``.
"""

from __future__ import annotations

from cutpaste_tf.data.mvtec import (  # noqa: F401  (the tables' row keys, re-exported)
    MVTEC_CATEGORIES,
    MVTEC_KINDS,
    MVTEC_OBJECTS,
    MVTEC_TEXTURES,
)

MeanSe = tuple[float, float]

# Table 1 proxy-task keys in the paper's column order, with the column names used in tables.
TABLE1_TASKS: tuple[str, ...] = (
    "rotation", "cutout", "scar_cutout", "cutpaste", "scar", "3way", "ensemble",
)
TASK_LABELS: dict[str, str] = {
    "rotation": "Rotation",
    "cutout": "Cutout",
    "scar_cutout": "Scar",
    "cutpaste": "CutPaste",
    "scar": "CutPaste (scar)",
    "3way": "CutPaste (3-way)",
    "ensemble": "CutPaste (3-way) ensemble of 5",
    "pixel": "CutPaste (3-way) pixel AUROC",
    "union": "Binary (Union)",
}

# Table 1, row by row as printed: Rotation, Cutout, Scar, CutPaste, CutPaste (scar),
# CutPaste (3-way) as (mean, stderr), then Ensemble (one number).
_TABLE1_ROWS: dict[str, tuple[MeanSe, MeanSe, MeanSe, MeanSe, MeanSe, MeanSe, float]] = {
    "carpet": ((29.7, 1.4), (35.3, 2.3), (92.7, 0.4), (67.9, 1.8), (94.6, 0.6), (93.1, 1.1), 93.9),
    "grid": ((60.5, 7.0), (57.5, 3.0), (74.4, 2.5), (99.9, 0.1), (95.5, 0.3), (99.9, 0.1), 100.0),
    "leather": ((55.2, 1.4), (67.7, 1.5), (99.9, 0.1), (99.7, 0.1), (100.0, 0.0), (100.0, 0.0), 100.0),
    "tile": ((70.1, 1.9), (71.8, 4.0), (96.7, 0.9), (95.9, 1.0), (89.4, 2.8), (93.4, 1.0), 94.6),
    "wood": ((95.8, 1.1), (92.0, 0.8), (98.9, 0.2), (94.9, 0.5), (98.7, 0.3), (98.6, 0.5), 99.1),
    "bottle": ((95.0, 0.7), (88.7, 0.8), (98.5, 0.2), (99.2, 0.2), (98.0, 0.5), (98.3, 0.5), 98.2),
    "cable": ((85.3, 0.8), (80.2, 1.4), (78.3, 1.7), (87.1, 0.8), (78.8, 2.9), (80.6, 0.5), 81.2),
    "capsule": ((71.8, 1.4), (69.5, 1.1), (82.9, 0.7), (87.9, 0.7), (95.3, 0.8), (96.2, 0.5), 98.2),
    "hazelnut": ((83.6, 0.8), (69.7, 1.3), (98.9, 0.2), (91.3, 0.6), (96.7, 0.4), (97.3, 0.3), 98.3),
    "metal_nut": ((72.7, 0.5), (84.6, 0.7), (86.9, 1.5), (96.8, 0.5), (97.9, 0.2), (99.3, 0.2), 99.9),
    "pill": ((79.2, 1.4), (78.7, 0.7), (82.2, 1.4), (93.4, 0.9), (85.8, 1.3), (92.4, 1.3), 94.9),
    "screw": ((35.8, 2.9), (17.6, 4.4), (11.3, 2.2), (54.4, 1.7), (83.7, 0.7), (86.3, 1.0), 88.7),
    "toothbrush": ((99.1, 0.2), (98.1, 0.6), (94.8, 1.0), (99.2, 0.2), (96.7, 0.4), (98.3, 0.9), 99.4),
    "transistor": ((88.9, 0.4), (82.5, 1.2), (92.0, 0.7), (96.4, 0.7), (91.1, 0.6), (95.5, 0.5), 96.1),
    "zipper": ((74.3, 1.6), (75.7, 1.0), (86.8, 0.9), (99.4, 0.1), (99.5, 0.1), (99.4, 0.2), 99.9),
}
# Table 1 "average" rows (texture, object, all), same columns.
_TABLE1_AVERAGE_ROWS: dict[str, tuple[MeanSe, MeanSe, MeanSe, MeanSe, MeanSe, MeanSe, float]] = {
    "texture": ((62.3, 2.6), (64.9, 2.3), (92.5, 0.8), (91.7, 0.7), (95.7, 0.8), (97.0, 0.5), 97.5),
    "object": ((78.6, 1.1), (74.5, 1.3), (81.3, 1.1), (90.5, 0.6), (92.4, 0.8), (94.3, 0.6), 95.5),
    "all": ((73.1, 1.6), (71.3, 1.6), (85.0, 1.0), (90.9, 0.7), (93.5, 0.8), (95.2, 0.6), 96.1),
}

# TABLE1[task][category] -> (mean, stderr), or a float for "ensemble".
TABLE1: dict[str, dict[str, MeanSe | float]] = {
    task: {cat: row[i] for cat, row in _TABLE1_ROWS.items()} for i, task in enumerate(TABLE1_TASKS)
}
# TABLE1_AVERAGES[task]["texture" | "object" | "all"] -> (mean, stderr), or a float for "ensemble".
TABLE1_AVERAGES: dict[str, dict[str, MeanSe | float]] = {
    task: {group: row[i] for group, row in _TABLE1_AVERAGE_ROWS.items()}
    for i, task in enumerate(TABLE1_TASKS)
}

# Table 2: pixel-wise localisation AUROC of CutPaste (3-way), patch model, (mean, stderr).
TABLE2_PIXEL: dict[str, MeanSe] = {
    "carpet": (98.3, 0.0),
    "grid": (97.5, 0.1),
    "leather": (99.5, 0.0),
    "tile": (90.5, 0.2),
    "wood": (95.5, 0.1),
    "bottle": (97.6, 0.1),
    "cable": (90.0, 0.2),
    "capsule": (97.4, 0.1),
    "hazelnut": (97.3, 0.1),
    "metal_nut": (93.1, 0.4),
    "pill": (95.7, 0.1),
    "screw": (96.7, 0.1),
    "toothbrush": (98.1, 0.0),
    "transistor": (93.0, 0.2),
    "zipper": (99.3, 0.0),
}
TABLE2_PIXEL_AVERAGES: dict[str, MeanSe] = {
    "texture": (96.3, 0.1),
    "object": (95.8, 0.1),
    "all": (96.0, 0.1),
}

# Table 5: binary classification of normal against the union of CutPaste and CutPaste-Scar.
# The paper gives only these averages for it, no per-category numbers.
TABLE5_UNION_AVERAGES: dict[str, MeanSe] = {
    "texture": (97.3, 0.3),
    "object": (92.8, 0.5),
    "all": (94.3, 0.5),
}

# Table 4: Cutout variants against CutPaste (Sec. 5.1); only texture / object / all averages,
# (mean, stderr). Its Cutout "all" s.e. is printed 1.7 where Table 1 prints 1.6; both kept.
TABLE4_TASKS: tuple[str, ...] = ("cutout", "cutout_mean", "cutout_color", "confetti", "cutpaste")
_TABLE4_ROWS: dict[str, tuple[MeanSe, MeanSe, MeanSe, MeanSe, MeanSe]] = {
    "texture": ((64.9, 2.3), (65.5, 1.8), (70.5, 2.2), (80.1, 2.3), (91.7, 0.7)),
    "object": ((74.5, 1.3), (78.1, 1.1), (78.9, 1.0), (76.7, 0.3), (90.5, 0.6)),
    "all": ((71.3, 1.7), (73.9, 1.3), (76.1, 1.4), (77.8, 1.5), (90.9, 0.7)),
}
# TABLE4_AVERAGES[task]["texture" | "object" | "all"] -> (mean, stderr).
TABLE4_AVERAGES: dict[str, dict[str, MeanSe]] = {
    task: {group: row[i] for group, row in _TABLE4_ROWS.items()}
    for i, task in enumerate(TABLE4_TASKS)
}
TASK_LABELS.update({"cutout_mean": "Cutout (Mean)", "cutout_color": "Cutout (Color)",
                    "confetti": "Confetti"})

PAPER_TASKS: tuple[str, ...] = TABLE1_TASKS + ("pixel", "union", "cutout_mean", "cutout_color",
                                                "confetti")


def paper_results(task: str) -> tuple[dict[str, MeanSe | float], dict[str, MeanSe | float]]:
    """Return the paper's (per-category, averages) numbers for a task key, for comparison tables."""
    if task in TABLE1:
        return TABLE1[task], TABLE1_AVERAGES[task]
    if task == "pixel":
        return dict(TABLE2_PIXEL), dict(TABLE2_PIXEL_AVERAGES)
    if task == "union":
        return {}, dict(TABLE5_UNION_AVERAGES)
    if task in TABLE4_AVERAGES:  # Table 4 only: averages, no per-category numbers
        return {}, dict(TABLE4_AVERAGES[task])
    raise ValueError(f"unknown paper task {task!r}; choices: {', '.join(PAPER_TASKS)}")

# Table 6 (Sec. 5.3): detection AUROC on synthetic anomalies pasted onto normal images, by a
# model trained with Cutout and with CutPaste (3-way). Keys are our kind names
# "<shape>_<fill>": "digit_color" is the paper's MNIST column (digits with a random colour;
# the paper has no natural-image digit column), "*_natural" are its "†" columns. "average" is
# the paper's "Avg" over its seven columns.
TABLE6_KINDS: tuple[str, ...] = ("digit_color", "square_color", "ellipse_color", "heart_color",
                                 "square_natural", "ellipse_natural", "heart_natural")
TABLE6: dict[str, dict[str, float]] = {
    "cutout": dict(zip(TABLE6_KINDS + ("average",),
                       (52.3, 90.6, 89.3, 87.5, 86.4, 84.0, 80.7, 81.5))),
    "cutpaste": dict(zip(TABLE6_KINDS + ("average",),
                         (96.1, 98.4, 98.2, 97.9, 99.3, 99.2, 99.0, 98.3))),
}


# Section 5.4, semantic outlier detection on CIFAR-10 (one class normal, the other nine
# anomalous; protocol of the paper's refs [20, 52]): mean image AUROC over the ten classes per
# proxy task. The paper gives only these three means, no per-class numbers or errors.
CIFAR10_MEAN_AUROC: dict[str, float] = {
    "cutout": 60.2,
    "cutpaste": 69.4,
    "rotation": 91.3,
}

# =============================================================================================
# Tables 7 and 8 (Appendix A.3): CutPaste (3-way) with one hyperparameter changed, 5 seeds,
# (mean, stderr) of the texture / object / all averages; the paper gives no per-category numbers.
# Keyed by the flag that sets the hyperparameter and its value; "area_ratio" by the largest
# patch area (the upper bound of --area_ratio; the lower one stays 0.02). Defaults: learning rate
# 0.03, 256 epochs, jitter 0.1, largest area 0.15.

def _groups(*rows: MeanSe) -> dict[str, MeanSe]:
    return dict(zip(("texture", "object", "all"), rows))


ABLATIONS: dict[str, dict[float, dict[str, MeanSe]]] = {
    "learning_rate": {  # Table 7 (1)
        0.1: _groups((97.1, 0.3), (94.4, 0.6), (95.3, 0.5)),
        0.03: _groups((97.0, 0.5), (94.3, 0.6), (95.2, 0.6)),
        0.01: _groups((97.2, 0.3), (94.2, 0.6), (95.2, 0.5)),
        0.003: _groups((96.1, 0.7), (93.9, 0.5), (94.6, 0.6)),
    },
    "epochs": {  # Table 7 (2), epochs of 256 steps
        128: _groups((96.6, 0.4), (94.9, 0.6), (95.4, 0.5)),
        192: _groups((96.1, 0.7), (94.5, 0.4), (95.0, 0.5)),
        256: _groups((97.0, 0.5), (94.3, 0.6), (95.2, 0.6)),
        320: _groups((97.0, 0.4), (94.7, 0.5), (95.5, 0.4)),
        384: _groups((96.3, 0.4), (94.0, 0.6), (94.8, 0.5)),
    },
    "patch_jitter": {  # Table 8 (1)
        0.0: _groups((96.2, 0.6), (94.3, 0.6), (94.9, 0.6)),
        0.1: _groups((97.0, 0.5), (94.3, 0.6), (95.2, 0.6)),
        0.2: _groups((97.4, 0.3), (94.5, 0.5), (95.5, 0.4)),
        0.3: _groups((97.5, 0.2), (94.5, 0.5), (95.5, 0.4)),
    },
    "area_ratio": {  # Table 8 (2), the largest patch area
        0.1: _groups((97.1, 0.4), (94.5, 0.5), (95.3, 0.5)),
        0.15: _groups((97.0, 0.5), (94.3, 0.6), (95.2, 0.6)),
        0.2: _groups((95.8, 0.9), (94.4, 0.5), (94.8, 0.6)),
        0.3: _groups((96.6, 0.4), (94.5, 0.5), (95.2, 0.5)),
    },
}


def ablation_result(flag: str, value: float) -> "dict[str, MeanSe] | None":
    """The paper's (texture, object, all) averages for ``--flag=value`` of CutPaste (3-way), or
    None when Table 7 / 8 has no such column."""
    for key, groups in ABLATIONS.get(flag, {}).items():
        if abs(key - value) < 1e-9:
            return groups
    return None

# Table 3 (Sec. 4.3): EfficientNet-B4 pretrained on ImageNet ("pretrain", one number) and
# fine-tuned by CutPaste (3-way) ("finetune", (mean, stderr) over 5 seeds), with the GDE on the
# pooled features ("pool") or on the pooled level-7 features ("level7").
TABLE3_COLUMNS: tuple[tuple[str, str], ...] = (
    ("pool", "pretrain"), ("pool", "finetune"), ("level7", "pretrain"), ("level7", "finetune"),
)
_TABLE3_ROWS: dict[str, tuple[float, MeanSe, float, MeanSe]] = {
    "carpet": (98.3, (100.0, 0.0), 97.6, (100.0, 0.0)),
    "grid": (96.4, (98.8, 0.1), 98.2, (99.1, 0.0)),
    "leather": (100.0, (100.0, 0.0), 100.0, (100.0, 0.0)),
    "tile": (99.9, (98.9, 0.2), 99.9, (99.8, 0.2)),
    "wood": (99.7, (99.8, 0.0), 99.6, (99.8, 0.0)),
    "bottle": (99.8, (100.0, 0.0), 100.0, (100.0, 0.0)),
    "cable": (91.2, (93.9, 0.1), 96.5, (96.2, 0.3)),
    "capsule": (93.0, (94.3, 0.3), 94.7, (95.4, 0.1)),
    "hazelnut": (96.6, (99.7, 0.0), 100.0, (99.9, 0.0)),
    "metal_nut": (94.3, (98.7, 0.1), 97.7, (98.6, 0.0)),
    "pill": (81.9, (91.3, 0.2), 91.0, (93.3, 0.2)),
    "screw": (86.3, (86.0, 0.1), 92.0, (86.6, 0.2)),
    "toothbrush": (89.3, (92.8, 0.2), 90.3, (90.7, 0.1)),
    "transistor": (94.6, (95.6, 0.2), 97.5, (97.5, 0.2)),
    "zipper": (95.6, (99.9, 0.0), 97.0, (99.9, 0.1)),
}
_TABLE3_AVERAGE_ROWS: dict[str, tuple[float, MeanSe, float, MeanSe]] = {
    "texture": (98.9, (99.5, 0.0), 99.0, (99.7, 0.0)),
    "object": (92.3, (95.2, 0.1), 95.7, (95.8, 0.1)),
    "all": (94.5, (96.6, 0.1), 96.8, (97.1, 0.0)),
}
# TABLE3[(feature, stage)][category] -> float (pretrain) or (mean, stderr) (finetune).
TABLE3: dict[tuple[str, str], dict[str, MeanSe | float]] = {
    column: {cat: row[i] for cat, row in _TABLE3_ROWS.items()}
    for i, column in enumerate(TABLE3_COLUMNS)
}
TABLE3_AVERAGES: dict[tuple[str, str], dict[str, MeanSe | float]] = {
    column: {group: row[i] for group, row in _TABLE3_AVERAGE_ROWS.items()}
    for i, column in enumerate(TABLE3_COLUMNS)
}
