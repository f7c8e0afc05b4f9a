"""Labelled validation defects against a trained run: choosing settings without test labels.

    python -m launch.validate --model_dir=runs/x --data_dir=data/elpv [--category=poly] \\
        [--validation_dir=path/to/defects]

For each trained category (``--category``, default all in the model dir) the model and its
fitted density score the normal training images the run held out (train with
``--val_fraction`` > 0) against labelled defect images that are in neither the training nor the
test set: one subfolder per kind of defect, by default ``<data_dir>/<category>/validation``
(``--dataset=elpv`` writes its uncertain cells there: ``probable``, defect probability 2/3, and
``possible``, 1/3). Prints the AUROC per kind and over all kinds, and writes
``validation.json`` and ``validation.md`` into the model dir. No test image is read.
Exit codes: 0 done, 2 bad flags or files.
"""

from __future__ import annotations

import os

from cutpaste_tf import files, rundir
from cutpaste_tf.analysis import labelled_validation as lv
from cutpaste_tf.config import RunConfig
from cutpaste_tf.data import index
from cutpaste_tf.pipeline import trained
from launch import errors
from launch import flags as flag_defs

FLAGS = flag_defs.FLAGS
RESULTS = "validation.json"
TABLE = "validation.md"


def plan() -> tuple[RunConfig, list[tuple[str, list[str], dict[str, list[str]]]]]:
    """Checks every flag and input and returns (config, [(category, held-out normal files,
    {kind: defect files})]) before any model is loaded."""
    if not FLAGS.model_dir:
        raise ValueError("--model_dir is required")
    config = rundir.load_run_config(FLAGS.model_dir)
    names = rundir.requested_categories(FLAGS.model_dir, FLAGS.category)
    if FLAGS.validation_dir and len(names) > 1:
        raise ValueError(f"--validation_dir holds one category's defects, but {len(names)} "
                         f"categories are asked for ({', '.join(names)}); pass --category")
    if not FLAGS.validation_dir and not FLAGS.data_dir:
        raise ValueError("--data_dir (whose <category>/validation folders hold the defects) or "
                         "--validation_dir is required")
    work = []
    for name in names:
        normal = rundir.held_out_files(rundir.category_dir(FLAGS.model_dir, name))
        folder = FLAGS.validation_dir or os.path.join(FLAGS.data_dir, name, index.VALIDATION_FOLDER)
        work.append((name, normal, lv.defect_kinds(folder)))
    return config, work


def table_markdown(results: dict[str, dict]) -> str:
    """One row per category: the AUROC (%) per kind and over all, with the image counts."""
    kinds = sorted({k for r in results.values() for k in r["auroc"] if k != lv.ALL})
    lines = ["Labelled validation defects against held-out normal training images, AUROC (%)",
             "", "| category | held-out normal | " + " | ".join(
                 f"{k} (n)" for k in kinds) + " | all |",
             "| --- | ---: | " + "---: | " * len(kinds) + "---: |"]
    for name, r in sorted(results.items()):
        cells = [f"{100 * r['auroc'][k]:.1f} ({r['num_defects'][k]})" if k in r["auroc"]
                 else "–" for k in kinds]
        lines.append(f"| {name} | {r['num_normal']} | " + " | ".join(cells)
                     + f" | {100 * r['auroc'][lv.ALL]:.1f} |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    flag_defs.start(argv, "launch.validate")
    with errors.reported(ValueError, FileNotFoundError):
        config, work = plan()
        path = os.path.join(FLAGS.model_dir, RESULTS)
        results = rundir.read_category_results(path)
        size, batch = config.train.image_size, config.eval_batch_size
        for name, normal_paths, kinds in work:
            model, estimator = trained.load_trained(FLAGS.model_dir, name, config)
            normal = trained.load_images(normal_paths, size, batch)
            defects = {k: trained.load_images(p, size, batch) for k, p in kinds.items()}
            print(f"[{name}] {len(normal)} held-out normal training images against "
                  + ", ".join(f"{len(v)} {k}" for k, v in defects.items()))
            aurocs = lv.validation_auroc(model, estimator, normal, defects,
                                         config.density.feature, batch)
            results[name] = {"auroc": aurocs, "num_normal": len(normal),
                             "num_defects": {k: len(v) for k, v in defects.items()},
                             "defect_dirs": {k: os.path.dirname(p[0]) for k, p in kinds.items()}}
    table = table_markdown(results)
    files.write_json(path, {"task": config.train.task, "categories": results})
    files.write_text(os.path.join(FLAGS.model_dir, TABLE), table + "\n")
    print(table)
    print(f"Results: {path}")


if __name__ == "__main__":
    flag_defs.run(main)
