"""The flags as typed configs: the one translation from the command line to the library.

Each flag sets the config field of its name (the rule is in :mod:`launch.flags`); the values
are checked once, by the configs themselves and by the library, whose messages name the fields
(:mod:`launch.errors` shows them as flags). Only what is command-line syntax is checked here:
list flags with the wrong number of values, or values that are not numbers.
"""

from __future__ import annotations

import dataclasses

from absl import logging

from cutpaste_tf.config import (
    AugmentConfig,
    DensityConfig,
    LocalizationConfig,
    ModelConfig,
    RobustnessConfig,
    RunConfig,
    ThresholdConfig,
    TrainConfig,
)
from cutpaste_tf.models.cutpaste_net import check_backbone_weights
from cutpaste_tf.ops import shifts
from cutpaste_tf.pipeline.inputs import InputSpec
from launch.flags import FLAGS

# Old spellings of flag values: flag -> {old value: value}; each use logs one deprecation line.
DEPRECATED_VALUES: dict[str, dict[str, str]] = {"feature": {"pool": "pooled"}}


def _floats(name: str, count: int) -> tuple[float, ...]:
    values = getattr(FLAGS, name)
    try:
        parsed = tuple(float(v) for v in values)
    except ValueError:
        raise ValueError(f"--{name} must be numbers, got {','.join(values)}") from None
    if len(parsed) != count:
        raise ValueError(f"--{name} needs {count} comma-separated values, got {','.join(values)}")
    return parsed


def _ints(name: str) -> tuple[int, ...]:
    values = [v for v in getattr(FLAGS, name) if v.strip()]
    try:
        return tuple(int(v) for v in values)
    except ValueError:
        raise ValueError(f"--{name} must be integers, got {','.join(values)}") from None


def _size(name: str) -> tuple[int, int]:
    """A flag of one value or height,width as (height, width)."""
    size = _ints(name)
    if len(size) not in (1, 2):
        raise ValueError(f"--{name} takes one value or height,width; "
                         f"got {','.join(getattr(FLAGS, name))}")
    return size[0], size[-1]


def image_size() -> tuple[int, int]:
    return _size("image_size")


def value(name: str) -> str:
    """The value of flag ``name``, an old spelling replaced (with a deprecation line)."""
    given = getattr(FLAGS, name)
    new = DEPRECATED_VALUES.get(name, {}).get(given)
    if new is None:
        return given
    logging.warning("--%s=%s is deprecated; use --%s=%s", name, given, name, new)
    return new


def augment_config() -> AugmentConfig:
    return AugmentConfig(
        area_ratio=_floats("area_ratio", 2), aspect_ratio=_floats("aspect_ratio", 2),
        scar_width=_floats("scar_width", 2), scar_length=_floats("scar_length", 2),
        scar_angle=FLAGS.scar_angle, scar_reference_size=FLAGS.scar_reference_size,
        patch_jitter=FLAGS.patch_jitter, translate=FLAGS.translate,
        jitter=_floats("jitter", 4))


def train_config() -> TrainConfig:
    names = [f.name for f in dataclasses.fields(TrainConfig)
             if f.name not in ("image_size", "augment")]
    return TrainConfig(image_size=image_size(), augment=augment_config(),
                       **{n: getattr(FLAGS, n) for n in names})


def model_config() -> ModelConfig:
    """The backbone, its weights (checked now, before any training) and the head."""
    weights = FLAGS.backbone_weights.strip()
    weights = None if weights.lower() in ("", "none") else weights
    check_backbone_weights(FLAGS.backbone, weights)
    return ModelConfig(backbone=FLAGS.backbone, head_widths=_ints("head_widths"),
                       classifier_init=FLAGS.classifier_init,
                       head_batchnorm=FLAGS.head_batchnorm, head_init=FLAGS.head_init,
                       head_embedding=FLAGS.head_embedding,
                       input_standardization=FLAGS.input_standardization,
                       backbone_weights=weights)


def density_config() -> DensityConfig:
    return DensityConfig(kind=FLAGS.density, feature=value("feature"),
                         normalize_features=FLAGS.normalize_features,
                         kde_gamma=FLAGS.kde_gamma,
                         augment_copies=FLAGS.density_augment_copies,
                         augment_jitter=_floats("density_augment_jitter", 4))


def robustness_config() -> RobustnessConfig:
    try:  # a bad entry fails now, before any training
        shifts.parse_shifts(FLAGS.stress_shifts)
    except ValueError as e:
        raise ValueError(f"--stress_shifts={FLAGS.stress_shifts}: {e}") from None
    return RobustnessConfig(stress_test=FLAGS.stress_test, shifts=FLAGS.stress_shifts,
                            max_images=FLAGS.stress_max_images)


def threshold_config() -> ThresholdConfig:
    return ThresholdConfig(val_fraction=FLAGS.val_fraction, quantile=FLAGS.threshold_quantile,
                           folds=FLAGS.threshold_folds)


def localization_config() -> LocalizationConfig:
    per_location = {"auto": None, "true": True, "false": False}[FLAGS.per_location]
    names = ("model_type", "dense_patch_size", "stride", "upsample_sigma", "dense_chunk",
             "gradcam", "heatmaps", "gradcam_layer")
    return LocalizationConfig(train_patch_size=_size("train_patch_size"),
                              per_location=per_location,
                              **{n: getattr(FLAGS, n) for n in names})


def run_config() -> RunConfig:
    """The typed config of the flags; a bad value raises ValueError naming its field."""
    return RunConfig(model=model_config(), train=train_config(), density=density_config(),
                     eval_batch_size=FLAGS.eval_batch_size, threshold=threshold_config(),
                     localization=localization_config(), robustness=robustness_config(),
                     mask_threshold=FLAGS.mask_threshold)


def input_spec() -> InputSpec:
    """The dataset, image-check and labelled-validation flags (launch.train, launch.experiment)."""
    values = {f.name: getattr(FLAGS, f.name) for f in dataclasses.fields(InputSpec)
              if f.name != "categories"}
    return InputSpec(categories=tuple(FLAGS.category),
                     **{n: tuple(v) if isinstance(v, list) else v for n, v in values.items()})
