"""A run's settings by name: the one translation from settings named as the launchers' flags
(``task``, ``image_size``, ``data_dir``, ... : docs/flags.md) to the typed configs a run takes.

``launch.train`` passes its flags' values; :func:`cutpaste_tf.train` passes keyword arguments
and the lines of a flagfile (:func:`read_flagfile`), so the same name means the same thing
everywhere. A value may be a Python value (``image_size=64``, ``head_widths=(512,)``,
``gradcam=False``) or text as a flagfile holds it (``"64"``, ``"512,512"``, ``"false"``); a
setting left out keeps its default, the paper's (the flags' defaults are the same, which
``tests/test_settings.py`` checks).

A bad value raises ValueError naming the setting as ``name=value`` (or by its name), which
:mod:`launch.errors` shows as the flag.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
import typing
from typing import Any, Callable, Mapping, Optional

from cutpaste_tf import rundir
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

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """Where a run writes and how it runs, beside its config and its inputs."""

    model_dir: Optional[str] = None
    export_dir: Optional[str] = None  # default <model_dir>/export; "none": no export
    export_version: int = 1
    overwrite: bool = False
    progress: bool = True  # training progress and a start and an end line for every stage
    progress_every_s: float = 30.0
    strategy: str = "auto"  # cutpaste_tf.training.distribute.STRATEGIES
    tpu: Optional[str] = None
    require_accelerator: bool = False


@dataclasses.dataclass(frozen=True)
class Settings:
    """A run's settings, typed: the config of each category's model, where its images come from,
    and where it writes."""

    config: RunConfig
    inputs: InputSpec
    options: RunOptions


# Settings whose name differs from the config field they set: name -> the field's dotted path.
RENAMED: dict[str, str] = {"density": "density.kind", "threshold_quantile": "threshold.quantile",
                           "threshold_folds": "threshold.folds", "category": "categories",
                           "density_augment_copies": "density.augment_copies",
                           "density_augment_jitter": "density.augment_jitter",
                           "stress_shifts": "robustness.shifts",
                           "stress_max_images": "robustness.max_images"}
# Old spellings of values: setting -> {old value: value}; each use is reported (``warn``).
DEPRECATED_VALUES: dict[str, dict[str, str]] = {"feature": {"pool": "pooled"}}
# Settings of two values given as one (``image_size=64``: 64 x 64).
SIZES = ("image_size", "train_patch_size")
# The config sections (RunConfig's fields) and the settings of each that need more than a type.
_SECTIONS = {"train": TrainConfig, "model": ModelConfig, "density": DensityConfig,
             "threshold": ThresholdConfig, "localization": LocalizationConfig,
             "robustness": RobustnessConfig}
_TRUE, _FALSE = ("true", "t", "1", "yes", "y"), ("false", "f", "0", "no", "n")


def warn(message: str) -> None:
    """How an old spelling is reported by default: one ``warning:`` line on stderr."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _field_paths() -> dict[str, tuple[str, ...]]:
    """Setting name -> the path of the RunConfig field it sets (augment's inside train)."""
    paths: dict[str, tuple[str, ...]] = {}
    for section, cls in _SECTIONS.items():
        for field in dataclasses.fields(cls):
            if field.name == "augment":
                paths.update({f.name: (section, "augment", f.name)
                              for f in dataclasses.fields(AugmentConfig)})
            else:
                paths[field.name] = (section, field.name)
    paths.update({f.name: (f.name,) for f in dataclasses.fields(RunConfig)
                  if f.name not in _SECTIONS})
    for name, dotted in RENAMED.items():
        if dotted.count(".") == 1:
            paths[name] = tuple(dotted.split("."))
            paths.pop(dotted.split(".")[1], None)
    return paths


CONFIG_NAMES: dict[str, tuple[str, ...]] = _field_paths()
INPUT_NAMES: tuple[str, ...] = tuple(
    "category" if f.name == "categories" else f.name for f in dataclasses.fields(InputSpec))
OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RunOptions))
# Every setting of a training run (launch.train's flags).
NAMES: frozenset[str] = frozenset(CONFIG_NAMES) | frozenset(INPUT_NAMES) | frozenset(OPTION_NAMES)


def check_names(names, where: str = "", known: frozenset[str] = NAMES) -> None:
    """Raises ValueError naming a setting that is not one of ``known`` (with the closest)."""
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"{where}{name} is not a setting of a training run (docs/flags.md "
                             f"lists them){hint}")


def _text(name: str, value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _items(name: str, value: Any) -> list:
    """A list setting's values: a sequence, or text with commas (``"0.1,0.2"``), or one value."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        return [v.strip() if isinstance(v, str) else v for v in value
                if not (isinstance(v, str) and not v.strip())]
    return [value]


def _floats(name: str, value: Any, count: int) -> tuple[float, ...]:
    items = _items(name, value)
    try:
        parsed = tuple(float(v) for v in items)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={_text(name, value)}: {name} must be numbers") from None
    if len(parsed) != count:
        raise ValueError(f"{name}={_text(name, value)}: {name} needs {count} comma-separated "
                         "values")
    return parsed


def _ints(name: str, value: Any) -> tuple[int, ...]:
    items = _items(name, value)
    try:
        if any(isinstance(v, float) and not v.is_integer() for v in items):
            raise ValueError
        return tuple(int(v) for v in items)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={_text(name, value)}: {name} must be integers") from None


def _size(name: str, value: Any) -> tuple[int, int]:
    """One value or height,width as (height, width)."""
    size = _ints(name, value)
    if len(size) not in (1, 2):
        raise ValueError(f"{name}={_text(name, value)}: {name} takes one value or height,width")
    return size[0], size[-1]


def _scalar(name: str, value: Any, hint: Any) -> Any:
    """``value`` as the type ``hint`` (bool, int, float, str, or Optional of one)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if args and value is None:
        return None
    kind = args[0] if args else hint
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE + _FALSE:
                return text in _TRUE
            raise ValueError
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        return str(value) if kind is str else value
    except (TypeError, ValueError):
        what = {bool: "true or false", int: "an integer", float: "a number"}[kind]
        raise ValueError(f"{name}={value} must be {what}") from None


def _value(name: str, value: Any, hint: Any, warn: Callable[[str], None]) -> Any:
    """One setting's value as its field takes it."""
    if name in SIZES:
        return _size(name, value)
    if name == "backbone_weights":
        text = "" if value is None else str(value).strip()
        return None if text.lower() in ("", "none") else text
    if name == "per_location":
        if value is None or isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text not in ("auto", "true", "false"):
            raise ValueError(f"per_location={value} must be auto, true or false")
        return {"auto": None, "true": True, "false": False}[text]
    new = DEPRECATED_VALUES.get(name, {}).get(value) if isinstance(value, str) else None
    if new is not None:
        warn(f"{name}={value} is deprecated; use {name}={new}")
        return new
    origin = typing.get_origin(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        if args[-1] is Ellipsis:
            return (_ints(name, value) if args[0] is int else
                    tuple(str(v) for v in _items(name, value)))
        return _floats(name, value, len(args))
    return _scalar(name, value, hint)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def run_config(values: Mapping[str, Any], warn: Callable[[str], None] = warn) -> RunConfig:
    """The RunConfig of ``values`` (setting name -> value; others at their defaults); a bad
    value raises ValueError naming its setting or field. ``warn`` reports an old spelling."""
    fields: dict[tuple[str, ...], Any] = {}
    for name, path in CONFIG_NAMES.items():
        if name in values:
            owner = {1: RunConfig, 2: _SECTIONS.get(path[0]), 3: AugmentConfig}[len(path)]
            fields[path] = _value(name, values[name], _hints(owner)[path[-1]], warn)
    model = fields.get(("model", "backbone"), ModelConfig.backbone)
    weights = fields.get(("model", "backbone_weights"))
    if ("model", "backbone_weights") in fields:
        check_backbone_weights(model, weights)  # a missing file fails now, before any training

    def part(cls: type, prefix: tuple[str, ...], **nested) -> Any:
        return cls(**{p[-1]: v for p, v in fields.items() if p[:-1] == prefix}, **nested)

    shift_list = fields.get(("robustness", "shifts"))
    if shift_list is not None:
        try:  # a bad entry fails now, before any training
            shifts.parse_shifts(shift_list)
        except ValueError as e:
            raise ValueError(f"stress_shifts={shift_list}: {e}") from None
    train = part(TrainConfig, ("train",), augment=part(AugmentConfig, ("train", "augment")))
    return part(RunConfig, (), train=train, model=part(ModelConfig, ("model",)),
                density=part(DensityConfig, ("density",)),
                threshold=part(ThresholdConfig, ("threshold",)),
                localization=part(LocalizationConfig, ("localization",)),
                robustness=part(RobustnessConfig, ("robustness",)))


def input_spec(values: Mapping[str, Any]) -> InputSpec:
    """The dataset, image-check and labelled-validation settings of ``values``."""
    hints = _hints(InputSpec)
    given = {}
    for name in INPUT_NAMES:
        if name in values:
            field = RENAMED.get(name, name)
            given[field] = _value(name, values[name], hints[field], warn)
    return InputSpec(**given)


def run_options(values: Mapping[str, Any]) -> RunOptions:
    """Where the run writes and how it runs, from ``values``."""
    hints = _hints(RunOptions)
    given = {n: _value(n, values[n], hints[n], warn) for n in OPTION_NAMES if n in values}
    options = RunOptions(**given)
    if options.strategy not in STRATEGIES:
        raise ValueError(f"strategy={options.strategy} must be one of {', '.join(STRATEGIES)}")
    return options


def from_values(values: Mapping[str, Any], warn: Callable[[str], None] = warn) -> Settings:
    """Every setting of a training run from ``values`` (setting name -> value)."""
    check_names(values)
    return Settings(run_config(values, warn), input_spec(values), run_options(values))


def read_flagfile(path: str, known: frozenset[str] = NAMES,
                  _seen: tuple[str, ...] = ()) -> dict[str, str]:
    """The settings of a flagfile as text (name -> value), as ``--flagfile=`` reads it: one
    ``--name=value`` a line (``--name`` and ``--noname`` for true and false), ``#`` comments,
    nested ``--flagfile=`` lines (paths relative to the working directory, as absl reads them),
    the last value of a setting winning. A name that is not one of ``known`` raises ValueError
    naming the file."""
    if path in _seen:
        raise ValueError(f"flagfile {path} includes itself")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise ValueError(f"flagfile {path}: {e.strerror or e}") from None
    values: dict[str, str] = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith(("#", "//")):
            continue
        if not line.startswith("-"):
            raise ValueError(f"flagfile {path}: {line!r} is not a --name=value line")
        name, eq, value = line.lstrip("-").partition("=")
        if name == "flagfile":
            values.update(read_flagfile(value, known, (*_seen, path)))
            continue
        if not eq:  # --name is true, --noname false
            name, value = (name[2:], "false") if name not in known and name.startswith("no") else (
                name, "true")
        check_names([name], f"flagfile {path}: ", known)
        values[name] = value
    return values


def flagfile_text(values: Mapping[str, Any]) -> str:
    """A flagfile of ``values`` (setting name -> value): ``launch.train --flagfile=`` on it
    redoes the run; settings left out keep their defaults there too."""
    lines = []
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            lines.append(f"--{name}" if value else f"--no{name}")
        else:
            lines.append(f"--{name}={_text(name, value)}")
    return "".join(line + "\n" for line in lines)


def export_dir(options: RunOptions) -> Optional[str]:
    """Where the SavedModels go: ``export_dir``, else ``<model_dir>/export``; None for
    ``export_dir="none"`` (no export)."""
    if options.export_dir and options.export_dir.lower() == "none":
        return None
    return options.export_dir or rundir.default_export_dir(options.model_dir or "")
