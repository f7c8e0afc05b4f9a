"""Published numbers from the CutPaste paper (Li et al., CVPR 2021), for comparison tables.

All values are AUROC in percent, transcribed from the paper text (shared/paper/cutpaste_cvpr2021.txt);
``tests/test_metrics.py`` re-parses the paper's table lines and checks every number here against them.

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
"""

from __future__ import annotations

MVTEC_TEXTURES: tuple[str, ...] = ("carpet", "grid", "leather", "tile", "wood")
MVTEC_OBJECTS: tuple[str, ...] = (
    "bottle",
    "cable",
    "capsule",
    "hazelnut",
    "metal_nut",
    "pill",
    "screw",
    "toothbrush",
    "transistor",
    "zipper",
)
MVTEC_CATEGORIES: tuple[str, ...] = MVTEC_TEXTURES + MVTEC_OBJECTS
# Category -> "texture" | "object", the grouping of the paper's tables.
MVTEC_KINDS: dict[str, str] = {
    **{c: "texture" for c in MVTEC_TEXTURES},
    **{c: "object" for c in MVTEC_OBJECTS},
}

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

PAPER_TASKS: tuple[str, ...] = TABLE1_TASKS + ("pixel", "union")


def paper_results(task: str) -> tuple[dict[str, MeanSe | float], dict[str, MeanSe | float]]:
    """Return the paper's (per-category, averages) numbers for a task key, for comparison tables."""
    if task in TABLE1:
        return TABLE1[task], TABLE1_AVERAGES[task]
    if task == "pixel":
        return dict(TABLE2_PIXEL), dict(TABLE2_PIXEL_AVERAGES)
    if task == "union":
        return {}, dict(TABLE5_UNION_AVERAGES)
    raise ValueError(f"unknown paper task {task!r}; choices: {', '.join(PAPER_TASKS)}")


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
