"""Did the proxy task learn? The training curve of a run and the check that it left chance.

A run whose proxy-task accuracy sits at chance has learned nothing, whatever AUROC its features
happen to give. Training records a curve (``<category>/train_curve.json``): one row per logging
window with the window's mean loss, accuracy and accuracy per class. :func:`check` reads it at a
quarter of the steps and at the end; a run still within :data:`MARGIN` of chance there is marked
"not learning" in ``results.json``, ``results.md``, the HTML report and the experiment tables,
and training prints :func:`warning` when the quarter mark passes. A marked run that was clear of
chance at the end is labelled "learned late" (:func:`status`) rather than "not learned": its
features may be fine, but the run needed more than the steps it was given.
"""

from __future__ import annotations

import os
from typing import Mapping, Optional, Sequence

import tensorflow as tf

from cutpaste_tf import files, rundir

CURVE_FILE = rundir.TRAIN_CURVE_FILE
# "Within a few points of chance": a 3-way run at 0.38 after a quarter of its steps, or a
# binary one at 0.55, is marked.
MARGIN = 0.05


def chance(num_classes: int) -> float:
    """Accuracy of a guess on balanced classes (every proxy task's batches are balanced)."""
    return 1.0 / num_classes


def read_curve(category_dir: str) -> list[dict]:
    """The rows of ``<category_dir>/train_curve.json`` (empty if there is none)."""
    path = os.path.join(category_dir, CURVE_FILE)
    if not tf.io.gfile.exists(path):
        return []
    return list(files.read_json(path)["rows"])


def write_curve(category_dir: str, rows: Sequence[Mapping], class_names: Sequence[str]) -> None:
    """Writes the curve atomically (a reader never sees half of it)."""
    files.write_json(os.path.join(category_dir, CURVE_FILE),
                     {"classes": list(class_names), "rows": [dict(r) for r in rows]})


def accuracy_at(rows: Sequence[Mapping], step: int) -> Optional[Mapping]:
    """The first row logged at or after ``step`` (None if training has not got there)."""
    for row in rows:
        if row["step"] >= step:
            return row
    return None


def check(rows: Sequence[Mapping], total_steps: int, num_classes: int,
          margin: float = MARGIN) -> Optional[dict]:
    """Whether the proxy task left chance by a quarter of ``total_steps``.

    Returns None before the quarter mark was logged; otherwise ``learned`` (False when the
    window accuracy at the quarter mark, or the last one, is below chance + ``margin``), the
    figures it was judged on and the per-class accuracies at the end.
    """
    quarter = accuracy_at(rows, max(1, -(-total_steps // 4)))
    if quarter is None:
        return None
    last = rows[-1]
    level = chance(num_classes) + margin
    learned = quarter["accuracy"] >= level and last["accuracy"] >= level
    return {"learned": bool(learned), "chance": chance(num_classes), "margin": margin,
            "quarter_step": int(quarter["step"]), "quarter_accuracy": quarter["accuracy"],
            "final_step": int(last["step"]), "final_accuracy": last["accuracy"],
            "final_accuracy_per_class": list(last.get("accuracy_per_class", []))}


def verdict(category_dir: str, total_steps: int, num_classes: int) -> Optional[dict]:
    """:func:`check` on the curve a category's training wrote (None without one)."""
    return check(read_curve(category_dir), total_steps, num_classes)


def status(result: Mapping) -> str:
    """``"learned"``; ``"learned late"`` when the accuracy was within the margin of chance at the
    quarter mark but clear of it at the end; otherwise ``"not learned"``."""
    if result["learned"]:
        return "learned"
    level = result["chance"] + result["margin"]
    if result["quarter_accuracy"] < level <= result["final_accuracy"]:
        return "learned late"
    return "not learned"


def figures(result: Mapping) -> str:
    """The figures a :func:`check` result was judged on, for messages and tables."""
    text = f"training accuracy {result['quarter_accuracy']:.3f} at step {result['quarter_step']}"
    if result["final_step"] != result["quarter_step"]:  # during training the two are one row
        text += f", {result['final_accuracy']:.3f} at step {result['final_step']}"
    return f"{text} (chance {result['chance']:.3f})"


def warning(result: Mapping, task: str, category: str = "") -> str:
    """What to tell a user whose run is not learning: the figures, the likely causes and the
    flags to try."""
    where = f"[{category}] " if category else ""
    return (
        f"{where}warning: the {task} proxy task is not learning: {figures(result)}. "
        "Features of a network that has not learned its proxy task do not measure the "
        "method, whatever their AUROC. Likely causes, with the flags to "
        "try: too few steps for the paper's slow-starting setup, the authors' eight-layer "
        "head, a random classifier (more --epochs or --steps_per_epoch; for a short run "
        "--flagfile=configs/cpu_choices.flags after the main config: one 512 head layer and a "
        "zero classifier, keeping the paper's translation and whole-image jitter, without "
        "which a moved or darker capture reads as a defect: docs/learning.md, point 16); scars "
        "scaled down with the image until they vanish (--scar_reference_size=0, the default, "
        "keeps them 2-16 px wide); patches "
        "too faint on plain textures (--patch_jitter, --area_ratio); or a class this data "
        "cannot support in the time given (--task=cutpaste).")


def end_note(result: Optional[Mapping]) -> str:
    """What a run's last line says about a run marked as not learning (its ``learning``
    field): the status and figures in full, so that a rerun that skips the training, and with
    it :func:`warning`, still says why; "" for a run that learned or was too short to judge."""
    if not result or result["learned"]:
        return ""
    return (f"; PROXY TASK {status(result).upper()}: {figures(result)}, so this AUROC does not "
            "measure the method (causes and flags to try: docs/learning.md)")


def not_learned(results: Mapping[str, Mapping]) -> list[str]:
    """Categories of ``{category: results.json}`` whose run was marked as not learning."""
    return sorted(c for c, r in results.items()
                  if r.get("learning") and not r["learning"]["learned"])
