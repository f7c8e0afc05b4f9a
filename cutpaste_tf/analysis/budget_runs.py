"""Running the budget study (:mod:`cutpaste_tf.analysis.budget_study` defines it; its launcher is
``launch.budget_study``): the study's data under ``data_root``, each cell in its own processes
(``launch.train``, then ``launch.validate`` against the labelled defects), budgets first, and
the tables and figure of the finished cells.

A finished cell is skipped and an unfinished one resumes from its checkpoints, so the study
can be stopped and run again. Each cell's output goes to ``<cell>.train.log`` and
``<cell>.validate.log``.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import time
from typing import Optional, Sequence

from cutpaste_tf import files
from cutpaste_tf.analysis import budget_study as study
from cutpaste_tf.analysis import drift_study
from cutpaste_tf.pipeline import inputs

# Where the cells' launchers run: the repository (configs/ holds the flagfiles they name).
REPOSITORY = os.path.dirname(inputs.shipped_testdata())


def prepare(families: Sequence[str], data_root: str, mvtec_dir: Optional[str]) -> None:
    """Puts each family's data under ``data_root``: carved copies of MVTec AD bottle (from
    ``mvtec_dir``) and of the shipped testdata's washer, and ELPV."""
    if "mvtec_bottle" in families:
        if not mvtec_dir or not os.path.isdir(os.path.join(mvtec_dir, "bottle")):
            raise ValueError(f"mvtec_dir={mvtec_dir}: needs a bottle/ folder in the MVTec AD "
                             "layout for the mvtec_bottle family (or leave that family out)")
        study.carve_validation(os.path.join(mvtec_dir, "bottle"),
                               os.path.join(data_root, "mvtec_val", "bottle"))
    if "testdata_washer" in families:
        testdata = inputs.shipped_testdata()
        study.carve_validation(os.path.join(testdata, "washer"),
                               os.path.join(data_root, "testdata_val", "washer"))
        with open(os.path.join(testdata, "categories.json"), encoding="utf-8") as f:
            files.write_text(os.path.join(data_root, "testdata_val", "categories.json"), f.read())
    if any(study.FAMILIES[f]["data"] == "elpv" for f in families):
        from cutpaste_tf.data import elpv
        elpv.prepare(os.path.join(data_root, "elpv"), 0.25, 0)  # configs/elpv.flags' split


def run_cell(cell: tuple[str, str, int, int], study_dir: str, data_root: str,
             image_size: int) -> str:
    """Trains and validates one cell (family, arm, steps, seed) in subprocesses; returns a line
    saying how it went."""
    family, arm, steps, seed = cell
    model_dir = study.cell_dir(study_dir, family, arm, steps, seed)
    if study.read_cell(model_dir, family):
        return f"finished before: {model_dir}"
    os.makedirs(os.path.dirname(model_dir), exist_ok=True)
    start = time.time()
    for module, args in (
            ("launch.train", study.train_args(family, arm, steps, seed, study_dir, data_root,
                                              image_size)),
            ("launch.validate", study.validate_args(family, arm, steps, seed, study_dir,
                                                    data_root))):
        log = f"{model_dir}.{module.split('.')[1]}.log"
        with open(log, "a") as out:
            code = subprocess.call([sys.executable, "-m", module, *args], stdout=out,
                                   stderr=subprocess.STDOUT, cwd=REPOSITORY)
        if code:
            return f"FAILED ({module} exit {code}, see {log}): {model_dir}"
    return f"done in {(time.time() - start) / 60:.1f} min: {model_dir}"


def judge_drift(study_dir: str, data_root: str) -> None:
    """The drift figures of every finished cell that has none yet (docs/learning.md, point 16;
    :mod:`cutpaste_tf.analysis.drift_study`), then ``drift_study_<steps>.md`` and ``.json``."""
    for cell in study.collect(study_dir):
        path = study.cell_dir(study_dir, cell["family"], cell["arm"], cell["steps"], cell["seed"])
        if cell["arm"] in drift_study.ARMS and drift_study.read_cell(path) is None:
            drift_study.evaluate_cell(path, cell["family"], data_root)
            print(f"drift figures: {path}", flush=True)
    for steps in sorted({c["steps"] for c in study.collect(study_dir)}):
        records = drift_study.collect(study_dir, steps)
        if records:
            files.write_json(os.path.join(study_dir, f"drift_study_{steps}.json"),
                             {"records": records})
            table = drift_study.table_markdown(records)
            files.write_text(os.path.join(study_dir, f"drift_study_{steps}.md"), table)
            print(f"Drift at {steps} steps:\n{table}")


def summarize(study_dir: str) -> str:
    """Writes ``budget_study.json`` (every finished cell), ``budget_study.md`` (the tables and
    the rule's verdicts) and ``budget_study.png`` into ``study_dir``; prints and returns the
    tables."""
    records = study.collect(study_dir)
    files.write_json(os.path.join(study_dir, "budget_study.json"), {"cells": records})
    table = study.table_markdown(records)
    files.write_text(os.path.join(study_dir, "budget_study.md"), table)
    print(table)
    if records:
        print(f"Figure: {study.plot(records, os.path.join(study_dir, 'budget_study.png'))}")
    return table


def run(study_dir: str, data_root: str, families: Sequence[str], arms: Sequence[str],
        steps: Sequence[int], seeds: int, image_size: int = 64, jobs: int = 1,
        mvtec_dir: Optional[str] = None, summarize_only: bool = False,
        drift: bool = False) -> bool:
    """The study: checks the families and arms, prepares the data, runs every cell (``jobs``
    at a time; the baseline arm is always added), then (``drift``) :func:`judge_drift` and
    :func:`summarize`. Returns whether every cell finished."""
    if not study_dir or not data_root:
        raise ValueError("study_dir and data_root are required")
    unknown = [f for f in families if f not in study.FAMILIES] + [
        a for a in arms if a not in study.ARMS]
    if unknown:
        raise ValueError(f"unknown families or arms: {', '.join(unknown)}; families "
                         f"{', '.join(study.FAMILIES)}; arms {', '.join(study.ARMS)}")
    if summarize_only:
        if drift:
            judge_drift(study_dir, data_root)
        summarize(study_dir)
        return True
    prepare(families, data_root, mvtec_dir)
    arms = [study.BASELINE] + [a for a in arms if a != study.BASELINE]
    cells = [(f, a, s, k) for s in steps for k in range(seeds) for f in families for a in arms]
    print(f"Budget study {study_dir}: {len(cells)} cells")
    ok = True
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        for line in pool.map(lambda c: run_cell(c, study_dir, data_root, image_size), cells):
            print(line, flush=True)
            ok &= not line.startswith("FAILED")
    if drift:
        judge_drift(study_dir, data_root)
    summarize(study_dir)
    return ok
