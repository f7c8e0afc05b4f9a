"""The one driver of a run: every check before training, in one order, then each category
trained (or resumed), evaluated and exported, then the run's summary table and HTML report.

:func:`train` runs one model dir (``launch.train`` and :func:`cutpaste_tf.train`);
:func:`experiment` runs one model dir per setting and seed (``launch.experiment`` and
:func:`cutpaste_tf.experiment`). Both check, in this order (:func:`prepare`): the untrained
backbone warning, the distribution strategy and ``require_accelerator``, the ImageNet weights
(fetched now, not after the checks), the batch split, every category's images and masks, the
labelled validation set, the hold-out sizes, and the model dirs. An error there raises before
anything is written. A category that fails later is recorded (its ``failed.json``), said on
stderr, and the others go on; the result lists it. What the run prints (stage lines, the table,
where the results are) is the launchers' output; :mod:`cutpaste_tf.api` silences it or hands
it to a callback.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any, Callable, Mapping, Optional, Sequence

import tensorflow as tf

from cutpaste_tf import console, files, rundir
from cutpaste_tf import settings as settings_lib
from cutpaste_tf.analysis import experiment as experiment_lib
from cutpaste_tf.config import TASK_VIEWS, RunConfig
from cutpaste_tf.data import CategoryData
from cutpaste_tf.models import efficientnet
from cutpaste_tf.pipeline import build, failures, inputs, runner
from cutpaste_tf.pipeline import reexport as reexport_lib
from cutpaste_tf.reporting import experiment_report, experiment_tables, report, summary
from cutpaste_tf.settings import RunOptions, Settings
from cutpaste_tf.training import distribute
from cutpaste_tf.training import train as train_lib

# (where, error) -> the failure's description, after saying that the category failed.
Announce = Callable[[str, BaseException], dict]


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What :func:`train` leaves: per category it ran, its results (``<category>/results.json``:
    image AUROC under "auroc", the threshold, ...) or its failure (stage, error, message); the
    SavedModels, the run's tables (over every category of the model dir) and its report. Only
    the failures on a worker that is not the chief."""

    model_dir: str
    config: RunConfig
    categories: dict[str, dict]
    exports: dict[str, str]
    failures: dict[str, dict]
    results: str  # <model_dir>/results.json
    table: str  # results.md's text
    report: Optional[str]  # report.html; None without matplotlib

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclasses.dataclass(frozen=True)
class ExperimentResult:
    """What :func:`experiment` leaves: each setting's summary over seeds (means, standard
    errors, the ensemble), the tables and report, and the (run, category) pairs that failed."""

    experiment_dir: str
    settings: list[dict]
    models: int  # (run, category) pairs: settings x seeds x categories
    failures: dict[str, dict]
    results: str
    table: str
    report: Optional[str]

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclasses.dataclass(frozen=True)
class Prepared:
    """What the checks found: the strategy, the categories, the labelled validation set."""

    strategy: tf.distribute.Strategy
    categories: list[CategoryData]
    validation: Optional[tuple[list[str], list[int]]]
    chief: bool


def untrained_warning(config: RunConfig) -> str:
    """A warning line for a run whose features will be a random network's (no training steps
    and no initial backbone weights; such a run is allowed, e.g. as a baseline), else ""."""
    if config.train.epochs == 0 and not config.model.backbone_weights:
        return ("warning: epochs=0 with a randomly initialised backbone: the features are "
                "untrained; the AUROC will not measure the method")
    return ""


def prepare(runs: Sequence[tuple[str, RunConfig]], spec: inputs.InputSpec, options: RunOptions,
            words: Callable[[str], str] = lambda text: text) -> Prepared:
    """Everything checked before training, for each (model dir, config) of ``runs``, in the
    order of the module docstring; ``words`` rewrites the warnings for their reader."""
    configs = list(dict.fromkeys(config for _, config in runs))
    for warning in dict.fromkeys(untrained_warning(c) for c in configs):
        if warning:
            print(words(warning), file=sys.stderr, flush=True)
    strategy = distribute.make_strategy(options.strategy, options.tpu)
    distribute.check_accelerator(strategy, options.require_accelerator)
    if any(c.model.backbone_weights == "imagenet" for c in configs):
        efficientnet.imagenet_weights_file()  # fetched now, not after the checks
    for config in configs:
        build.check_batch(config, strategy.num_replicas_in_sync)
    categories = inputs.resolve_categories(spec)
    for data in categories:
        if data.val_files:
            print(words(f"[{data.name}] the dataset's {len(data.val_files)} normal validation "
                        "images set the decision threshold; val_fraction is not applied"))
    digests: dict[str, str] = {}
    for size in sorted({c.train.image_size for c in configs}):
        digests.update(inputs.validate_categories(categories, spec, size))
    validation = inputs.labelled_validation(categories, spec, digests)
    for config in configs:
        inputs.check_holdout(categories, config)
    chief = train_lib.is_chief(strategy)
    if chief:
        for model_dir, config in runs:
            rundir.check_model_dir(model_dir, config, overwrite=options.overwrite)
            inputs.record_test_split(categories, spec, model_dir)
    return Prepared(strategy, categories, validation, chief)


def _run_one(data: CategoryData, config: RunConfig, model_dir: str, export_dir: Optional[str],
             where: str, prepared: Prepared, options: RunOptions,
             announce: Announce) -> Optional[dict]:
    """Runs one category of one model dir; returns its failure (None when it succeeded). Bad
    backbone weights stop the run (every category would fail alike), named by ``where``."""
    try:
        error = failures.attempt(
            lambda: runner.run_category(
                data, config, model_dir, export_dir, options.export_version,
                verbose=options.progress, strategy=prepared.strategy,
                validation=prepared.validation, progress_every_s=options.progress_every_s),
            model_dir, data.name, record=prepared.chief, stop=(efficientnet.WeightsError,))
    except efficientnet.WeightsError as e:
        raise efficientnet.WeightsError(f"{where}{e}") from e
    return None if error is None else announce(where, error)


def _report(path_of: Callable[[], str], command: str, verbose: bool) -> Optional[str]:
    """Writes an HTML report and prints its path, or how to get it without matplotlib."""
    try:
        with console.stage("", "HTML report", verbose):
            path = path_of()
    except ImportError:
        print(f"Report: pip install -e .[viz], then python -m launch.report {command}")
        return None
    print(f"Report: {path}")
    return path


def saved_models_line(export_dir: str, names: list[str], version: int) -> str:
    """The end line naming the exports: the folder itself for one category, else the pattern
    and the categories that fill it."""
    if len(names) == 1:
        return f"SavedModels: {os.path.join(export_dir, names[0], str(version))}"
    return (f"SavedModels: {os.path.join(export_dir, '<category>', str(version))} for "
            f"<category> in {', '.join(names)}")


def train(settings: Settings, flags_text: str, announce: Announce = failures.announce,
          words: Callable[[str], str] = lambda text: text) -> RunResult:
    """Checks, trains, evaluates and exports every category of ``settings`` into its model dir,
    writes ``flags_text`` (a flagfile that redoes the run) as its flags.txt, then its tables
    and report. ``announce`` says that a category failed (the run goes on)."""
    config, options = settings.config, settings.options
    model_dir = options.model_dir
    if not model_dir:
        raise ValueError("model_dir is required")
    prepared = prepare([(model_dir, config)], settings.inputs, options, words)
    if prepared.chief:
        files.write_text(os.path.join(model_dir, rundir.FLAGS_FILE), flags_text)
    export_dir = settings_lib.export_dir(options)
    failed = {}
    for data in prepared.categories:
        failure = _run_one(data, config, model_dir, export_dir, f"[{data.name}] ", prepared,
                           options, announce)
        if failure is not None:  # recorded; the other categories go on
            failed[data.name] = failure
    if not prepared.chief:
        return RunResult(model_dir, config, {}, {}, failed, "", "", None)
    table = summary.summarize_run(model_dir, config.train.task)
    results = os.path.join(model_dir, rundir.RESULTS_FILE)
    print(table)
    print(f"Results: {results}")
    finished = {n: r for n, r in rundir.collect_results(model_dir).items()
                if n in {d.name for d in prepared.categories}}  # this run's categories
    exported = [d.name for d in prepared.categories if d.name not in failed]
    if export_dir and exported:
        print(saved_models_line(export_dir, exported, options.export_version))
    path = _report(lambda: report.write_report(model_dir), f"--model_dir={model_dir}",
                   options.progress)
    exports = {n: r["export_path"] for n, r in finished.items() if "export_path" in r}
    return RunResult(model_dir, config, finished, exports, failed, results, table, path)


def reexport(model_dir: str, categories: Sequence[str] = (), export_dir: Optional[str] = None,
             value: Optional[float] = None, quantile: Optional[float] = None,
             version: Optional[int] = None, to_tflite: bool = False) -> list[str]:
    """Re-exports trained categories of ``model_dir`` without training (a new threshold, a new
    version, TFLite: :func:`cutpaste_tf.pipeline.reexport.reexport_run`), then rewrites the
    run's summary tables; returns the export paths."""
    paths = reexport_lib.reexport_run(model_dir, categories, export_dir, value, quantile,
                                      version, to_tflite)
    summary.summarize_run(model_dir, rundir.load_run_config(model_dir).train.task)
    return paths


def experiment_settings(values: Mapping[str, Any], tasks: Sequence[str],
                        sweep: Optional[str], warn: Callable[[str], None] = settings_lib.warn
                        ) -> list[experiment_lib.Setting]:
    """One setting per task (x swept value), each config built from ``values`` (settings by
    name) as a training run builds it; a bad task, swept setting or value raises ValueError
    naming it."""
    tasks = list(tasks) or [str(values.get("task", RunConfig().train.task))]
    unknown = [t for t in tasks if t not in TASK_VIEWS]
    if unknown or len(set(tasks)) != len(tasks):
        raise ValueError(f"tasks={','.join(tasks)}: each task once, from "
                         f"{', '.join(sorted(TASK_VIEWS))}")
    parsed = experiment_lib.parse_sweep(sweep) if sweep else None
    if parsed and parsed[0] not in settings_lib.NAMES:
        raise ValueError(f"sweep={sweep}: {parsed[0]} is not a setting of a training run (e.g. "
                         "learning_rate, epochs, patch_jitter, area_ratio)")
    settings = []
    for task in tasks:
        if parsed is None:
            config = settings_lib.run_config({**values, "task": task}, warn)
            settings.append(experiment_lib.Setting(task, config))
            continue
        name, swept = parsed
        for value in swept:
            try:
                config = settings_lib.run_config(
                    {**values, "task": task, name: value.replace(":", ",")}, warn)
            except ValueError as e:
                raise ValueError(f"sweep={sweep}: {name}={value} (task {task}): {e}") from None
            settings.append(experiment_lib.Setting(task, config, name, value))
        if len({s.config for s in settings[-len(swept):]}) != len(swept):
            raise ValueError(f"sweep={sweep}: some values give the same run config: {name} "
                             "does not change training, or values repeat")
    return settings


def experiment(values: Mapping[str, Any], experiment_dir: str, seeds: Sequence[str],
               tasks: Sequence[str], sweep: Optional[str], flags_text: str,
               announce: Announce = failures.announce,
               words: Callable[[str], str] = lambda text: text) -> ExperimentResult:
    """Categories x tasks x seeds (x the values of one swept setting), each run as :func:`train`
    runs it in ``<experiment_dir>/<task>[/<setting>=<value>]/seed_<k>``, skipping every
    finished (run, category); then the tables over seeds and the report. ``values``: the
    settings every run shares (by name); ``flags_text``: a flagfile of them, which each run's
    flags.txt extends with its task, seed and model dir."""
    if not experiment_dir:
        raise ValueError("experiment_dir is required")
    options = settings_lib.run_options(values)
    if options.export_dir and options.export_dir.lower() != "none":
        raise ValueError("export_dir: each run exports into <run>/export; leave it unset, or "
                         "'none' to skip the exports")
    if options.model_dir:
        print(words(f"note: model_dir={options.model_dir} is not used; the runs go under "
                    f"experiment_dir={experiment_dir}"), file=sys.stderr)
    seed_list = experiment_lib.parse_seeds(seeds)
    warn = lambda message: settings_lib.warn(words(message))  # noqa: E731
    setting_list = experiment_settings(values, tasks, sweep, warn)
    runs = experiment_lib.plan(setting_list, seed_list, experiment_dir)
    prepared = prepare([(r.model_dir, r.config) for r in runs], settings_lib.input_spec(values),
                       options, words)
    categories = prepared.categories
    todo = [(run, data) for run in runs for data in categories
            if not experiment_lib.is_finished(run, data.name)]
    total = len(runs) * len(categories)
    print(f"Experiment {experiment_dir}: {len(setting_list)} setting(s) x {len(seed_list)} "
          f"seed(s) x {len(categories)} categories = {total} models; {total - len(todo)} "
          f"finished, {len(todo)} to run")
    if prepared.chief:
        write_flagfiles(runs, flags_text)
    failed = {}
    for run, data in todo:
        print(f"== {run.setting.name}, seed {run.seed}, {data.name}")
        no_export = options.export_dir and options.export_dir.lower() == "none"
        export_dir = None if no_export else rundir.default_export_dir(run.model_dir)
        failure = _run_one(data, run.config, run.model_dir, export_dir,
                           f"[{run.model_dir}, {data.name}] ", prepared, options, announce)
        if failure is not None:  # recorded; the other (run, category) pairs go on
            failed[f"{os.path.relpath(run.model_dir, experiment_dir)} {data.name}"] = failure
    if not prepared.chief:
        return ExperimentResult(experiment_dir, [], total, failed, "", "", None)
    summaries, table = write_tables(experiment_dir, setting_list, runs,
                                    [d.name for d in categories], seed_list)
    path = _report(lambda: experiment_report.write_experiment_report(experiment_dir),
                   f"--experiment_dir={experiment_dir}", options.progress)
    return ExperimentResult(experiment_dir, summaries, total, failed,
                            os.path.join(experiment_dir, rundir.RESULTS_FILE), table, path)


def write_flagfiles(runs: Sequence[experiment_lib.Run], flags_text: str) -> None:
    """Each run's flags.txt: ``launch.train --flagfile=`` on it redoes the run."""
    for run in runs:
        overrides = [f"--task={run.setting.task}", f"--seed={run.seed}",
                     f"--model_dir={run.model_dir}"]
        if run.setting.flag:
            overrides.append(f"--{run.setting.flag}={run.setting.value.replace(':', ',')}")
        files.write_text(os.path.join(run.model_dir, rundir.FLAGS_FILE),
                         flags_text + "\n".join(overrides) + "\n")


def write_tables(experiment_dir: str, settings: Sequence[experiment_lib.Setting],
                 runs: Sequence[experiment_lib.Run], names: list[str], seeds: list[int]
                 ) -> tuple[list[dict], str]:
    """Each run's summary, then the experiment's tables; prints them and where they are.
    Returns the settings' summaries and the Markdown."""
    for run in runs:
        if any(experiment_lib.is_finished(run, n) or failures.read(run.model_dir, n)
               for n in names):
            summary.summarize_run(run.model_dir, run.config.train.task)
    summaries = [{"name": s.name,
                  **experiment_lib.summarize_setting(s, runs, names, experiment_dir)}
                 for s in settings]
    sweep = None
    if settings[0].flag:
        sweep = {"flag": settings[0].flag,
                 "values": list(dict.fromkeys(s.value for s in settings))}
    table = experiment_tables.write(experiment_dir, summaries, seeds, sweep)
    print(table)
    print(f"Tables: {os.path.join(experiment_dir, rundir.RESULTS_TABLE)} and "
          f"{rundir.RESULTS_FILE}; "
          f"each run: {os.path.join(experiment_dir, '<setting>', 'seed_<k>')}")
    return summaries, table
