"""The flags as typed configs: launch.train's flags are the settings of a training run, and
:mod:`cutpaste_tf.settings` turns their values into configs, the same translation that
:func:`cutpaste_tf.train` gives its keyword arguments. Library messages name the settings;
:mod:`launch.errors` shows them as flags.
"""

from __future__ import annotations

from typing import Any, Iterable

from absl import logging

from cutpaste_tf import settings
from cutpaste_tf.config import RobustnessConfig, RunConfig
from cutpaste_tf.pipeline.inputs import InputSpec
from launch import errors
from launch.flags import FLAGS


def values(names: Iterable[str] = settings.NAMES) -> dict[str, Any]:
    """The flags ``names`` (default: every setting of a training run) by name, as parsed."""
    return {name: getattr(FLAGS, name) for name in names}


def warn(message: str) -> None:
    """An old spelling of a value, said once per use as a flag (``--feature=pool is
    deprecated; use --feature=pooled``)."""
    logging.warning("%s", errors.to_flags(message))


def run_config() -> RunConfig:
    """The typed config of the flags; a bad value raises ValueError naming its setting."""
    return settings.run_config(values(settings.CONFIG_NAMES), warn)


def robustness_config() -> RobustnessConfig:
    """The drift stress test's flags (launch.robustness) as their config."""
    names = [n for n, path in settings.CONFIG_NAMES.items() if path[0] == "robustness"]
    return settings.run_config(values(names), warn).robustness


def input_spec() -> InputSpec:
    """The dataset, image-check and labelled-validation flags (launch.train, launch.experiment)."""
    return settings.input_spec(values(settings.INPUT_NAMES))


def dataset_spec() -> InputSpec:
    """The dataset a trained run was trained on and the categories asked for: the data flags of
    the analyses of a run (launch.synthetic, launch.tsne)."""
    return InputSpec(dataset=FLAGS.dataset, data_dir=FLAGS.data_dir,
                     categories=tuple(FLAGS.category), category_kind=FLAGS.category_kind)


def run_settings() -> settings.Settings:
    """Every flag of a training run as typed settings: config, inputs, options."""
    return settings.Settings(run_config(), input_spec(), settings.run_options(
        values(settings.OPTION_NAMES)))
