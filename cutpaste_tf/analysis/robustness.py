"""The drift stress test of a finished run (``launch.robustness``): load a trained category,
find its normals and anomalies, run :mod:`cutpaste_tf.pipeline.stress`, and record the result
where the run's summary (results.md, the report) picks it up (:func:`stress_run`)."""

from __future__ import annotations

import os
from typing import Optional, Sequence

import dataclasses

from cutpaste_tf import files, rundir
from cutpaste_tf.analysis import labelled_validation as lv
from cutpaste_tf.config import RobustnessConfig, RunConfig
from cutpaste_tf.data import index, layouts
from cutpaste_tf.evaluation import threshold as threshold_lib
from cutpaste_tf.pipeline import patch, runner, stress, trained
from cutpaste_tf.reporting import robustness as tables
from cutpaste_tf.reporting import summary


def defect_files(validation_dir: Optional[str]) -> list[str]:
    """Every labelled defect image under ``validation_dir`` (one subfolder per kind), or none
    when it is not given or not a folder."""
    if not validation_dir or not os.path.isdir(validation_dir):
        return []
    return [p for paths in lv.defect_kinds(validation_dir).values() for p in paths]


def default_validation_dir(data_dir: Optional[str], category: str) -> Optional[str]:
    """``<data_dir>/<category>/validation`` (labelled defects kept out of the test set), when
    there is one."""
    if not data_dir:
        return None
    folder = os.path.join(data_dir, category, index.VALIDATION_FOLDER)
    return folder if os.path.isdir(folder) else None


def stress_trained(model_dir: str, category: str, config: RunConfig,
                   train_files: Optional[Sequence[str]] = None,
                   defects: Sequence[str] = ()) -> dict:
    """Runs the stress test of one trained category with the run's threshold: its held-out
    normals, or (a run without them; image models only) its ``train_files`` out of fold.
    Adds the result to the category's results.json; returns it."""
    out = rundir.category_dir(model_dir, category)
    record = rundir.read_threshold(out)
    cut = threshold_lib.Threshold(**record["threshold"])
    held = (list(record.get("normal_files") or [])
            if record.get("normal_method") == "validation_quantile" else [])
    if config.localization.model_type == "patch":
        normals = stress.unit_normals(patch.load_scorer(config, out, cut.value), config, held)
    else:
        if not held and train_files is None:
            raise ValueError(f"the run in {out} held no training images out (val_fraction=0): "
                             "the stress test scores its training images out of fold, so it "
                             "needs the dataset (data_dir) to list them")
        model, density = trained.load_trained(model_dir, category, config)
        normals = stress.image_normals(model, density, config, train_files or [], held)
    result = stress.run(normals, cut.value, config, out, defects)
    results_path = os.path.join(out, rundir.RESULTS_FILE)
    if os.path.exists(results_path):
        files.write_json(results_path, {**files.read_json(results_path), "robustness": result})
    return result


def plan(model_dir: str, categories: Sequence[str], settings: RobustnessConfig,
         data_dir: Optional[str] = None, dataset: str = "mvtec", category_kind: str = "object",
         validation_dir: Optional[str] = None
         ) -> tuple[RunConfig, list[tuple[str, Optional[list[str]], list[str]]]]:
    """Checks the inputs before any model is loaded: (the run's config with ``settings``,
    [(category, its training files (from ``data_dir``, when given in a published layout) or
    None, labelled defect files)])."""
    config = dataclasses.replace(rundir.load_run_config(model_dir), robustness=settings)
    kind = runner.kind_of(config)
    names = rundir.requested_categories(model_dir, categories, kind.DENSITY_FILE)
    if validation_dir and len(names) > 1:
        raise ValueError(f"validation_dir holds one category's defects, but {len(names)} "
                         f"categories are asked for ({', '.join(names)}); choose one category")
    work = []
    for name in names:
        train_files = None
        if data_dir and dataset in layouts.LAYOUTS:
            data = layouts.index_layout(dataset, data_dir, name, category_kind)
            train_files = list(runner.hold_out(data, config)[0].train_files)
        folder = validation_dir or default_validation_dir(data_dir, name)
        work.append((name, train_files, defect_files(folder)))
    return config, work


def stress_run(model_dir: str, categories: Sequence[str], settings: RobustnessConfig,
               data_dir: Optional[str] = None, dataset: str = "mvtec",
               category_kind: str = "object", validation_dir: Optional[str] = None) -> str:
    """The stress test of each requested category of a finished run (:func:`plan`, then
    :func:`stress_trained`); rewrites the run's results.md and results.json. Returns the
    tables."""
    config, work = plan(model_dir, categories, settings, data_dir, dataset, category_kind,
                        validation_dir)
    out = [tables.table_markdown(name, stress_trained(model_dir, name, config, train_files,
                                                      defects))
           for name, train_files, defects in work]
    summary.summarize_run(model_dir, config.train.task)
    return "\n".join(out)
