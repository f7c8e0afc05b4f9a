r"""The budget-scaling study of the departures from the paper (docs/learning.md, point 15).

    python -m launch.budget_study --study_dir=runs/budget_study --data_root=/data/study \
        --mvtec_dir=/data/mvtec_ad [--study_steps=600,2400,9600] [--study_seeds=3] \
        [--study_arms=...] [--study_families=...] [--study_jobs=2]
    python -m launch.budget_study --study_dir=runs/budget_study --data_root=/data/study \
        --study_summarize_only

Each cell (family x arm x steps x seed) is one ``launch.train`` run with a fifth of the normal
training images held out, then ``launch.validate`` against labelled defects kept apart from the
test set; cells run in that order (budgets first), each in its own process, logged to
``<cell>.train.log``. A finished cell is skipped and an unfinished one resumes from its
checkpoints, so the command can be stopped and run again. ``--data_root`` receives the data:
ELPV (prepared by the first run), and copies of MVTec AD bottle (from ``--mvtec_dir``) and the
shipped testdata washer with a third of each defect kind moved into ``validation/``.
Writes ``budget_study.json`` (every cell), ``budget_study.md`` (the tables and the rule's
verdicts) and ``budget_study.png`` (the figure) into ``--study_dir``. ``--study_drift`` also
judges each finished cell by drift (point 16: ``drift_study.json`` in the cell,
``drift_study_<steps>.md`` and ``.json`` in ``--study_dir``).
Exit codes: 0 done, 1 a cell failed (the others still ran), 2 bad flags.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import time

from absl import flags

from cutpaste_tf import files
from cutpaste_tf.analysis import budget_study as study
from launch import errors
from launch import flags as flag_defs

flags.DEFINE_string("study_dir", None, "Where the cells, tables and figure go.")
flags.DEFINE_string("data_root", None, "Where the study's data goes (ELPV, carved copies).")
flags.DEFINE_string("mvtec_dir", None, "MVTec AD root holding bottle/ (for mvtec_bottle).")
flags.DEFINE_list("study_families", list(study.FAMILIES), "Families of images, in order.")
flags.DEFINE_list("study_arms", list(study.ARMS), "Arms (the baseline is always added).")
flags.DEFINE_list("study_steps", [str(s) for s in study.STEPS], "Budgets in training steps.")
flags.DEFINE_integer("study_seeds", 3, "Seeds 0..N-1 of every cell.")
flags.DEFINE_integer("study_image_size", 64, "Image size of every cell.")
flags.DEFINE_integer("study_jobs", 1, "Cells that train at once (each its own process).")
flags.DEFINE_bool("study_summarize_only", False, "Only read the finished cells and write the "
                  "tables and figure.")
flags.DEFINE_bool("study_drift", False, "Also judge every finished cell by drift (docs/learning.md, "
                  "point 16): drift_study.json per cell, drift_study.md in --study_dir.")
FLAGS = flags.FLAGS


def prepare(families: list[str]) -> None:
    """Puts each family's data under --data_root (ELPV is prepared by its first run)."""
    root = FLAGS.data_root
    if "mvtec_bottle" in families:
        if not FLAGS.mvtec_dir or not os.path.isdir(os.path.join(FLAGS.mvtec_dir, "bottle")):
            raise ValueError(f"--mvtec_dir={FLAGS.mvtec_dir}: needs a bottle/ folder in the MVTec "
                             "AD layout for the mvtec_bottle family (or leave that family out)")
        study.carve_validation(os.path.join(FLAGS.mvtec_dir, "bottle"),
                               os.path.join(root, "mvtec_val", "bottle"))
    if "testdata_washer" in families:
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        study.carve_validation(os.path.join(here, "testdata", "washer"),
                               os.path.join(root, "testdata_val", "washer"))
        files.write_text(os.path.join(root, "testdata_val", "categories.json"),
                         open(os.path.join(here, "testdata", "categories.json")).read())
    if any(study.FAMILIES[f]["data"] == "elpv" for f in families):
        from cutpaste_tf.data import elpv
        elpv.prepare(os.path.join(root, "elpv"), 0.25, 0)  # configs/elpv.flags' split


def run_cell(cell: tuple[str, str, int, int]) -> str:
    """Trains and validates one cell in subprocesses; returns a line saying how it went."""
    family, arm, steps, seed = cell
    model_dir = study.cell_dir(FLAGS.study_dir, family, arm, steps, seed)
    if study.read_cell(model_dir, family):
        return f"finished before: {model_dir}"
    os.makedirs(os.path.dirname(model_dir), exist_ok=True)
    start = time.time()
    for module, args in (("launch.train", study.train_args(
            family, arm, steps, seed, FLAGS.study_dir, FLAGS.data_root, FLAGS.study_image_size)),
            ("launch.validate", study.validate_args(family, arm, steps, seed,
                                                    FLAGS.study_dir, FLAGS.data_root))):
        log = f"{model_dir}.{module.split('.')[1]}.log"
        with open(log, "a") as out:
            code = subprocess.call([sys.executable, "-m", module, *args], stdout=out,
                                   stderr=subprocess.STDOUT,
                                   cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        if code:
            return f"FAILED ({module} exit {code}, see {log}): {model_dir}"
    return f"done in {(time.time() - start) / 60:.1f} min: {model_dir}"


def judge_drift() -> None:
    """The drift figures of every finished cell that has none yet, then the drift tables."""
    from cutpaste_tf.analysis import drift_study
    for cell in study.collect(FLAGS.study_dir):
        path = study.cell_dir(FLAGS.study_dir, cell["family"], cell["arm"], cell["steps"],
                              cell["seed"])
        if cell["arm"] in drift_study.ARMS and drift_study.read_cell(path) is None:
            drift_study.evaluate_cell(path, cell["family"], FLAGS.data_root)
            print(f"drift figures: {path}", flush=True)
    for steps in sorted({c["steps"] for c in study.collect(FLAGS.study_dir)}):
        records = drift_study.collect(FLAGS.study_dir, steps)
        if records:
            files.write_json(os.path.join(FLAGS.study_dir, f"drift_study_{steps}.json"),
                             {"records": records})
            table = drift_study.table_markdown(records)
            files.write_text(os.path.join(FLAGS.study_dir, f"drift_study_{steps}.md"), table)
            print(f"Drift at {steps} steps:\n{table}")


def summarize() -> None:
    if FLAGS.study_drift:
        judge_drift()
    records = study.collect(FLAGS.study_dir)
    files.write_json(os.path.join(FLAGS.study_dir, "budget_study.json"), {"cells": records})
    table = study.table_markdown(records)
    files.write_text(os.path.join(FLAGS.study_dir, "budget_study.md"), table)
    print(table)
    if records:
        print(f"Figure: {study.plot(records, os.path.join(FLAGS.study_dir, 'budget_study.png'))}")


def main(argv: list[str]) -> None:
    flag_defs.start(argv, "launch.budget_study")
    with errors.reported(ValueError):
        if not FLAGS.study_dir or not FLAGS.data_root:
            raise ValueError("--study_dir and --data_root are required")
        unknown = [f for f in FLAGS.study_families if f not in study.FAMILIES] + [
            a for a in FLAGS.study_arms if a not in study.ARMS]
        if unknown:
            raise ValueError(f"unknown families or arms: {', '.join(unknown)}; families "
                             f"{', '.join(study.FAMILIES)}; arms {', '.join(study.ARMS)}")
        steps = [int(s) for s in FLAGS.study_steps]
        if not FLAGS.study_summarize_only:
            prepare(FLAGS.study_families)
    if not FLAGS.study_summarize_only:
        arms = [study.BASELINE] + [a for a in FLAGS.study_arms if a != study.BASELINE]
        cells = [(f, a, s, k) for s in steps for k in range(FLAGS.study_seeds)
                 for f in FLAGS.study_families for a in arms]
        print(f"Budget study {FLAGS.study_dir}: {len(cells)} cells")
        failed = False
        with concurrent.futures.ThreadPoolExecutor(FLAGS.study_jobs) as pool:
            for line in pool.map(run_cell, cells):
                print(line, flush=True)
                failed |= line.startswith("FAILED")
        summarize()
        if failed:
            sys.exit(1)
        return
    summarize()


if __name__ == "__main__":
    flag_defs.run(main)
