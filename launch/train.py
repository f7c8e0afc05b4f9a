r"""Train -> density -> evaluate -> export for one category, several, or all.

    python -m launch.train --flagfile=configs/3way.flags --data_dir=/data/mvtec_ad \
        --model_dir=runs/3way --category=bottle

Everything that can be checked before training is checked first: flags, the dataset folders of
every requested category, every image and mask in them (decoded once; see
``cutpaste_tf.data.validate``), and the model dir. The resolved config (JSON) and the flags (a
flagfile that reproduces the run) are written into the model dir.

A category that fails after that (training, a later stage, its files) is recorded and the
others go on; the run then ends with status 1 and a line naming what failed, and running the
same command again tries the failed categories again (``cutpaste_tf.pipeline.failures``).
The run itself is :func:`cutpaste_tf.driver.train`, which :func:`cutpaste_tf.train` runs too.
"""

from __future__ import annotations

import os

from cutpaste_tf import driver, rundir
from launch import configs, errors
from launch import flags as flag_defs

FLAGS = flag_defs.FLAGS


def main(argv: list[str]) -> None:
    flag_defs.start(argv, "launch.train")
    with errors.reported(ValueError):  # DataError and WeightsError are ValueErrors too
        result = driver.train(configs.run_settings(), flag_defs.flags_into_string("launch.train"),
                              errors.category_failed, errors.to_flags)
    # Exit 1 when a category failed (its cause is in results.md and <category>/failed.json).
    errors.end_with_failures(result.failures, len(result.categories) + len(result.failures),
                             os.path.join(FLAGS.model_dir, rundir.RESULTS_TABLE))


if __name__ == "__main__":
    flag_defs.run(main)
