"""Figures the docs quote, rendered from the per-seed values of the runs that produced them.

``docs/recorded_runs.json`` holds each recorded run's per-seed values and the list of quotes:
which figure (``run.metric``), in which form, appears in which file. :func:`missing` renders
every quote and names those a file no longer holds, so a mean in the README cannot drift from
its runs, nor from the same mean in another doc.
"""

from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np

from cutpaste_tf.evaluation import metrics


def render(values: Sequence[float], form: str) -> str:
    """``mean_se:D`` -> "0.882 ± 0.004", ``mean:D`` -> "64.77", ``values:D`` -> "(0.889, 0.876,
    0.881)", each with D decimals."""
    kind, digits = form.split(":")
    d = int(digits)
    if kind == "mean_se":
        m, s = metrics.mean_and_stderr(values)
        return f"{m:.{d}f} ± {s:.{d}f}"
    if kind == "mean":
        return f"{float(np.mean(values)):.{d}f}"
    if kind == "values":
        return "(" + ", ".join(f"{v:.{d}f}" for v in values) + ")"
    raise ValueError(f"unknown form {form!r}: mean_se:D, mean:D or values:D")


def load(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def quotes(recorded: dict) -> list[tuple[str, str, str]]:
    """(file, figure, rendered text) for every quote."""
    out = []
    for q in recorded["quotes"]:
        run, metric = q["figure"].rsplit(".", 1)
        text = render(recorded["runs"][run][metric], q["as"])
        out += [(path, q["figure"], text) for path in q["in"]]
    return out


def missing(recorded: dict, root: str) -> list[str]:
    """One line per quote that its file does not hold (empty when every figure matches)."""
    lines, cache = [], {}
    for path, figure, text in quotes(recorded):
        if path not in cache:
            with open(os.path.join(root, path), encoding="utf-8") as f:
                cache[path] = " ".join(f.read().split())
        if text not in cache[path]:
            lines.append(f"{path}: {figure} should read {text!r}")
    return lines
