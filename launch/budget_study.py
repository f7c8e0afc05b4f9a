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
Exit codes: 0 done, 1 a cell failed (the others still ran), 2 bad flags. The study's run:
:mod:`cutpaste_tf.analysis.budget_runs`.
"""

from __future__ import annotations

import sys

from absl import flags

from cutpaste_tf.analysis import budget_runs
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


def main(argv: list[str]) -> None:
    flag_defs.start(argv, "launch.budget_study")
    with errors.reported(ValueError):
        ok = budget_runs.run(
            FLAGS.study_dir, FLAGS.data_root, FLAGS.study_families, FLAGS.study_arms,
            [int(s) for s in FLAGS.study_steps], FLAGS.study_seeds, FLAGS.study_image_size,
            FLAGS.study_jobs, FLAGS.mvtec_dir, FLAGS.study_summarize_only, FLAGS.study_drift)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    flag_defs.run(main)
