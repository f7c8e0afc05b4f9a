"""Experiments: one run configuration over several seeds (and over a swept flag's values),
aggregated into mean ± standard error and an ensemble of the seeds' models.

An experiment is a set of ordinary model dirs, each one run exactly as ``launch.train`` runs
it, so that each can also be inspected, reported or exported alone::

    <experiment_dir>/<task>/seed_<k>/                   without a sweep
    <experiment_dir>/<task>/<flag>=<value>/seed_<k>/    one per value of a swept flag
    <experiment_dir>/results.json, results.md           the tables (cutpaste_tf.reporting.experiment_tables)

A (run, category) pair is finished when ``<run>/<category>/results.json`` exists (it is written
last by :func:`cutpaste_tf.pipeline.runner.run_category`) in a model dir whose config is this run's
(:func:`cutpaste_tf.rundir.check_model_dir` refuses any other); unfinished ones resume from their
last checkpoint. One whose last attempt failed has ``<run>/<category>/failed.json`` instead.

Statistics: per category, mean ± s.e. (sample standard deviation / sqrt(n)) over the seeds. For
the texture / object / all averages, the paper's statistic (Sec. 4.1, "the average of mean and
standard errors"): the mean of the categories' means ± the mean of their standard errors
(:func:`cutpaste_tf.evaluation.metrics.average_of_mean_and_stderr`). Kept beside it, under "over_seeds":
each seed's categories averaged first, then mean ± s.e. over those per-seed averages, the
standard error of the average itself. One seed has no standard error (None). The ensemble of
the seeds' models: :mod:`cutpaste_tf.evaluation.ensemble`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from cutpaste_tf import files, rundir
from cutpaste_tf.config import RunConfig
from cutpaste_tf.evaluation import ensemble, metrics
from cutpaste_tf.pipeline import failures

# Flags an experiment sets itself, or that choose data and outputs rather than a training setting.
NOT_SWEEPABLE: tuple[str, ...] = (
    "seed", "seeds", "task", "tasks", "sweep", "category", "data_dir", "dataset", "model_dir",
    "experiment_dir", "export_dir", "overwrite", "flagfile")


@dataclasses.dataclass(frozen=True)
class Setting:
    """One column of the tables: a task and, in a sweep, one value of the swept flag."""

    task: str
    config: RunConfig
    flag: Optional[str] = None   # the swept flag, without dashes
    value: Optional[str] = None  # its value as given on the command line

    @property
    def name(self) -> str:
        """Its folder under the experiment dir, also its key in results.json."""
        if self.flag is None:
            return self.task
        return f"{self.task}/{self.flag}={self.value.replace(':', '-')}"


@dataclasses.dataclass(frozen=True)
class Run:
    """One model dir: a setting trained with one seed."""

    setting: Setting
    seed: int
    model_dir: str
    config: RunConfig


def parse_seeds(values: Sequence[str]) -> list[int]:
    """``--seeds``: one number N means seeds 0..N-1; several numbers are the seeds themselves."""
    try:
        seeds = [int(v) for v in values if v.strip()]
    except ValueError:
        raise ValueError(f"seeds={','.join(values)}: must be integers") from None
    if len(seeds) == 1:
        if seeds[0] < 1:
            raise ValueError(f"seeds={seeds[0]}: a count must be at least 1")
        return list(range(seeds[0]))
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"seeds={','.join(values)}: must be a count or distinct "
                         "non-negative seeds")
    return seeds


def parse_sweep(text: str) -> tuple[str, list[str]]:
    """``--sweep=FLAG=V1,V2,...`` -> (flag name, values); checks only the syntax (the launcher
    checks that the flag exists and that each value makes a valid config)."""
    name, sep, rest = text.partition("=")
    name = name.strip().lstrip("-")
    values = [v.strip() for v in rest.split(",")]
    if not sep or not name or not rest.strip():
        raise ValueError(f"sweep={text!r} must look like FLAG=VALUE1,VALUE2,... "
                         "(e.g. sweep=learning_rate=0.003,0.01,0.03)")
    if any(not v for v in values):
        raise ValueError(f"sweep={text!r} has an empty value")
    if len(set(values)) != len(values):
        raise ValueError(f"sweep={text!r} repeats a value")
    if name in NOT_SWEEPABLE:
        raise ValueError(f"sweep={text!r} cannot vary {name}: the experiment sets it itself or "
                         "it is not a training setting (seeds=<seeds>, tasks=<tasks> instead)")
    return name, values


def plan(settings: Sequence[Setting], seeds: Sequence[int], experiment_dir: str) -> list[Run]:
    """Every (setting, seed) run, with its model dir and its config (the setting's, this seed)."""
    names = [s.name for s in settings]
    if len(set(names)) != len(names):
        raise ValueError(f"two settings share a folder: {names}")
    return [Run(s, seed, os.path.join(experiment_dir, s.name, f"seed_{seed}"),
                dataclasses.replace(s.config,
                                    train=dataclasses.replace(s.config.train, seed=seed)))
            for s in settings for seed in seeds]


def is_finished(run: Run, category: str) -> bool:
    """Whether ``category`` of ``run`` has its results (its config is checked elsewhere)."""
    return tf.io.gfile.exists(os.path.join(run.model_dir, category, rundir.RESULTS_FILE))


def aggregate(per_seed: Mapping[str, Mapping[int, float]], kinds: Mapping[str, str]) -> dict:
    """Mean ± s.e. over seeds per category, and the texture / object / all averages.

    ``per_seed[category][seed]`` is an AUROC; ``kinds`` maps categories to texture / object.
    The statistics are :func:`cutpaste_tf.evaluation.metrics.summarize`'s: a group's "mean" and
    "se" are the paper's, the mean of its categories' means and the mean of their standard
    errors ("categories": how many). Its "over_seeds" is mean ± s.e. over the per-seed averages
    of the group, from the seeds that have every category of the group (None when there is
    none).
    """
    empty = [c for c, by_seed in per_seed.items() if not by_seed]
    if empty:
        raise ValueError(f"category {empty[0]!r} has no results")
    values = {c: [by_seed[s] for s in sorted(by_seed)] for c, by_seed in per_seed.items()}
    summary = metrics.summarize(values, kinds)
    per_category = {c: {**metrics.seed_stat(values[c]),
                        "values": {str(s): by_seed[s] for s in sorted(by_seed)}}
                    for c, by_seed in per_seed.items()}
    averages = {}
    for group, (mean, se) in summary["averages"].items():
        cats = [c for c in per_seed if group == "all" or kinds[c] == group]
        seeds = sorted(set.intersection(*[set(per_seed[c]) for c in cats]))
        over_seeds = None
        if seeds:
            by_seed = {s: float(np.mean([per_seed[c][s] for c in cats])) for s in seeds}
            over_seeds = {**metrics.seed_stat(list(by_seed.values())),
                          "values": {str(s): v for s, v in by_seed.items()}}
        averages[group] = {"mean": mean, "se": se, "categories": len(cats),
                           "over_seeds": over_seeds}
    return {"per_category": per_category, "averages": averages}


def group_means(per_category: Mapping[str, float], kinds: Mapping[str, str]) -> dict:
    """Plain texture / object / all means of one number per category (an ensemble's AUROCs)."""
    out = {}
    for group in metrics.GROUPS:
        values = [v for c, v in per_category.items() if group == "all" or kinds[c] == group]
        if values:
            out[group] = float(np.mean(values))
    return out


def collect(runs: Sequence[Run], categories: Sequence[str]) -> tuple[dict, dict]:
    """Finished results of ``runs`` -> ({category: {seed: auroc}}, {category: kind})."""
    per_seed: dict[str, dict[int, float]] = {}
    kinds: dict[str, str] = {}
    for run in runs:
        for category in categories:
            if is_finished(run, category):
                result = files.read_json(os.path.join(run.model_dir, category, rundir.RESULTS_FILE))
                per_seed.setdefault(category, {})[run.seed] = float(result["auroc"])
                kinds[category] = result["kind"]
    return per_seed, kinds


def not_learned(runs: Sequence[Run], categories: Sequence[str]) -> list[dict]:
    """The finished (seed, category) runs marked as not having learned their proxy task."""
    found = []
    for run in runs:
        for category in categories:
            if is_finished(run, category):
                result = files.read_json(os.path.join(run.model_dir, category, rundir.RESULTS_FILE))
                verdict = result.get("learning")
                if verdict and not verdict["learned"]:
                    found.append({"seed": run.seed, "category": category, **verdict})
    return found


def failed(runs: Sequence[Run], categories: Sequence[str]) -> list[dict]:
    """The (seed, category) runs whose last attempt failed, each with its stage, error and
    message (:mod:`cutpaste_tf.pipeline.failures`)."""
    found = []
    for run in runs:
        for category in categories:
            failure = failures.read(run.model_dir, category)
            if failure:
                found.append({"seed": run.seed, "category": category, **failure})
    return found


def summarize_setting(setting: Setting, runs: Sequence[Run], categories: Sequence[str],
                      experiment_dir: str) -> dict:
    """One setting's aggregate, and the ensemble of its seeds' models when there are several."""
    mine = [r for r in runs if r.setting == setting]
    per_seed, kinds = collect(mine, categories)
    summary = {
        "task": setting.task, "flag": setting.flag, "value": setting.value,
        "runs": {str(r.seed): os.path.relpath(r.model_dir, experiment_dir) for r in mine},
        "kinds": kinds,
        **(aggregate(per_seed, kinds) if per_seed else {"per_category": {}, "averages": {}}),
        "ensemble": None,
        "not_learned": not_learned(mine, categories),
        "failed": failed(mine, categories),
    }
    complete = [c for c in per_seed if len(per_seed[c]) == len(mine)]
    if len(mine) > 1 and complete:
        aurocs, unavailable = {}, {}
        for category in complete:
            try:
                aurocs[category] = ensemble.ensemble_auroc([r.model_dir for r in mine], category)
            except ensemble.EnsembleUnavailable as e:
                unavailable[category] = str(e)
        summary["ensemble"] = {"num_models": len(mine), "per_category": aurocs,
                               "averages": group_means(aurocs, kinds),
                               "unavailable": unavailable}
    return summary
