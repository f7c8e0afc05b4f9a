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
it again tries the failed ones again. The experiment itself is
:func:`cutpaste_tf.driver.experiment`, which :func:`cutpaste_tf.experiment` runs too.
"""

from __future__ import annotations

import os

from cutpaste_tf import driver, rundir
from launch import configs, errors
from launch import flags as flag_defs

FLAGS = flag_defs.FLAGS


def main(argv: list[str]) -> None:
    flag_defs.start(argv, "launch.experiment")
    with errors.reported(ValueError):  # DataError and WeightsError are ValueErrors too
        result = driver.experiment(
            configs.values(), FLAGS.experiment_dir, FLAGS.seeds, FLAGS.tasks, FLAGS.sweep,
            flag_defs.flags_into_string("launch.train"), errors.category_failed,
            errors.to_flags)
    errors.end_with_failures(result.failures, result.models,
                             os.path.join(FLAGS.experiment_dir, rundir.RESULTS_TABLE),
                             what="models")


if __name__ == "__main__":
    flag_defs.run(main)
