r"""Categories x tasks x seeds (x the values of one swept flag), each run as launch.train runs it,
then mean ± standard error tables beside the paper's numbers and an ensemble of the seeds.

    python -m launch.experiment --flagfile=configs/3way.flags --data_dir=/data/mvtec_ad \
        --experiment_dir=runs/3way_5seeds --seeds=5
    python -m launch.experiment --flagfile=configs/sweep_learning_rate.flags \
        --data_dir=/data/mvtec_ad --experiment_dir=runs/sweep_lr

Every launch.train flag applies to every run (``--model_dir`` excepted: each run has its own,
``<experiment_dir>/<task>[/<flag>=<value>]/seed_<k>``). Flags, dataset, model dirs and sweep
values are all checked before anything trains. Running the command again skips every finished
(run, category) and resumes unfinished ones from their checkpoints; ``--overwrite`` deletes the
experiment's runs and starts again. Tables: ``<experiment_dir>/results.md`` and ``results.json``.
A (run, category) that fails once training has begun is recorded (in the tables too) and the
others go on; the experiment then ends with status 1 and a line naming what failed, and running
it again tries the failed ones again.
"""

from __future__ import annotations

import contextlib
import os
import sys

from absl import flags

from cutpaste_tf import config as config_lib
from cutpaste_tf import console, files, rundir
from cutpaste_tf.analysis import experiment
from cutpaste_tf.models import efficientnet
from cutpaste_tf.pipeline import build, failures, inputs, runner
from cutpaste_tf.reporting import experiment_report, experiment_tables, summary
from cutpaste_tf.training import distribute, train
from launch import configs, errors
from launch import flags as flag_defs

FLAGS = flag_defs.FLAGS


@contextlib.contextmanager
def flag_set(name: str, text: str):
    """Parses ``text`` into flag ``--name`` for the duration of the block, then restores it."""
    flag = FLAGS[name]
    old = flag.value
    try:
        flag.parse(text)
        yield
    finally:
        flag.value = old


def build_settings() -> list[experiment.Setting]:
    """One setting per task (x swept value), each config built from the flags as launch.train
    would; a bad task, swept flag or value raises ValueError naming it."""
    tasks = FLAGS.tasks or [FLAGS.task]
    unknown = [t for t in tasks if t not in config_lib.TASK_VIEWS]
    if unknown or len(set(tasks)) != len(tasks):
        raise ValueError(f"--tasks={','.join(tasks)}: each task once, from "
                         f"{', '.join(sorted(config_lib.TASK_VIEWS))}")
    sweep = experiment.parse_sweep(FLAGS.sweep) if FLAGS.sweep else None
    if sweep and sweep[0] not in flag_defs.accepted("launch.train"):
        raise ValueError(f"--sweep: there is no flag --{sweep[0]} of launch.train (e.g. "
                         "learning_rate, epochs, patch_jitter, area_ratio)")
    settings = []
    for task in tasks:
        with flag_set("task", task):
            if sweep is None:
                settings.append(experiment.Setting(task, configs.run_config()))
                continue
            name, values = sweep
            for value in values:
                try:
                    with flag_set(name, value.replace(":", ",")):
                        config = configs.run_config()
                except (flags.Error, ValueError) as e:
                    raise ValueError(f"--sweep: --{name}={value} (task {task}): {e}") from None
                settings.append(experiment.Setting(task, config, name, value))
            same = len({config_lib.to_json(s.config) for s in settings[-len(values):]})
            if same != len(values):
                raise ValueError(f"--sweep={FLAGS.sweep}: some values give the same run config; "
                                 f"--{name} does not change training, or values repeat")
    return settings


def check_inputs(runs: list[experiment.Run], categories: list,
                 spec: inputs.InputSpec) -> None:
    """Dataset (once per image size) and hold-out sizes of every run."""
    for size in sorted({r.config.train.image_size for r in runs}):
        inputs.validate_categories(categories, spec, size)
    for r in runs:
        inputs.check_holdout(categories, r.config)


def export_dir(run: experiment.Run) -> "str | None":
    if FLAGS.export_dir and FLAGS.export_dir.lower() == "none":
        return None
    return rundir.default_export_dir(run.model_dir)


def main(argv: list[str]) -> None:
    flag_defs.start(argv, "launch.experiment")
    base_flags = flag_defs.flags_into_string("launch.train")  # each run's flags.txt
    with errors.reported(ValueError):  # DataError and WeightsError are ValueErrors too
        if not FLAGS.experiment_dir:
            raise ValueError("--experiment_dir is required")
        if FLAGS.export_dir and FLAGS.export_dir.lower() != "none":
            raise ValueError("--export_dir: each run exports into <run>/export; leave it unset, "
                             "or 'none' to skip the exports")
        if FLAGS.model_dir:
            print(f"note: --model_dir={FLAGS.model_dir} is not used; the runs go under "
                  f"--experiment_dir={FLAGS.experiment_dir}", file=sys.stderr)
        seeds = experiment.parse_seeds(FLAGS.seeds)
        settings = build_settings()
        runs = experiment.plan(settings, seeds, FLAGS.experiment_dir)
        strategy = distribute.make_strategy(FLAGS.strategy, FLAGS.tpu)
        distribute.check_accelerator(strategy, FLAGS.require_accelerator)
        for setting in settings:
            build.check_batch(setting.config, strategy.num_replicas_in_sync)
        spec = configs.input_spec()
        categories = inputs.resolve_categories(spec)
        check_inputs(runs, categories, spec)
        validation = inputs.labelled_validation(categories, spec)
        chief = train.is_chief(strategy)
        if chief:
            for run in runs:
                rundir.check_model_dir(run.model_dir, run.config, overwrite=FLAGS.overwrite)
                inputs.record_test_split(categories, spec, run.model_dir)
    todo = [(run, data) for run in runs for data in categories
            if not experiment.is_finished(run, data.name)]
    total = len(runs) * len(categories)
    print(f"Experiment {FLAGS.experiment_dir}: {len(settings)} setting(s) x {len(seeds)} seed(s) "
          f"x {len(categories)} categories = {total} models; {total - len(todo)} finished, "
          f"{len(todo)} to run")
    if chief:
        write_flagfiles(runs, base_flags)
    failed = {}
    for run, data in todo:
        print(f"== {run.setting.name}, seed {run.seed}, {data.name}")
        where = f"[{run.model_dir}, {data.name}] "
        with errors.reported(efficientnet.WeightsError, where=where):
            error = failures.attempt(
                lambda: runner.run_category(
                    data, run.config, run.model_dir, export_dir(run), FLAGS.export_version,
                    verbose=FLAGS.progress, strategy=strategy, validation=validation,
                    progress_every_s=FLAGS.progress_every_s),
                run.model_dir, data.name, record=chief, stop=(efficientnet.WeightsError,))
        if error is not None:  # recorded; the other (run, category) pairs go on
            name = f"{os.path.relpath(run.model_dir, FLAGS.experiment_dir)} {data.name}"
            failed[name] = errors.category_failed(where, error)
    if chief:
        write_tables(settings, runs, [data.name for data in categories], seeds)
    errors.end_with_failures(failed, total,
                             os.path.join(FLAGS.experiment_dir, rundir.RESULTS_TABLE),
                             what="models")


def write_flagfiles(runs: list[experiment.Run], base_flags: str) -> None:
    """Each run's flags.txt: ``launch.train --flagfile=`` on it redoes the run."""
    for run in runs:
        overrides = [f"--task={run.setting.task}", f"--seed={run.seed}",
                     f"--model_dir={run.model_dir}"]
        if run.setting.flag:
            overrides.append(f"--{run.setting.flag}={run.setting.value.replace(':', ',')}")
        files.write_text(os.path.join(run.model_dir, rundir.FLAGS_FILE),
                         base_flags + "\n".join(overrides) + "\n")


def write_tables(settings: list[experiment.Setting], runs: list[experiment.Run],
                 names: list[str], seeds: list[int]) -> None:
    """Each run's summary, then the experiment's tables and report; prints where they are."""
    for run in runs:
        if any(experiment.is_finished(run, n) or failures.read(run.model_dir, n)
               for n in names):
            summary.summarize_run(run.model_dir, run.config.train.task)
    summaries = [{"name": s.name,
                  **experiment.summarize_setting(s, runs, names, FLAGS.experiment_dir)}
                 for s in settings]
    sweep = None
    if settings[0].flag:
        sweep = {"flag": settings[0].flag,
                 "values": list(dict.fromkeys(s.value for s in settings))}
    print(experiment_tables.write(FLAGS.experiment_dir, summaries, seeds, sweep))
    print(f"Tables: {os.path.join(FLAGS.experiment_dir, rundir.RESULTS_TABLE)} and "
          f"{rundir.RESULTS_FILE}; "
          f"each run: {os.path.join(FLAGS.experiment_dir, '<setting>', 'seed_<k>')}")
    try:
        with console.stage("", "HTML report", FLAGS.progress):
            path = experiment_report.write_experiment_report(FLAGS.experiment_dir)
        print(f"Report: {path}")
    except ImportError:
        print("Report: pip install -e .[viz], then "
              f"python -m launch.report --experiment_dir={FLAGS.experiment_dir}")


if __name__ == "__main__":
    flag_defs.run(main)
