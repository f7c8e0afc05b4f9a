"""A one-shot check of a machine with an accelerator: one call, one JSON file.

:func:`run_check` measures, in this order, each part guarded so that a failure records its
error string and the other parts still run:

- ``environment``: devices, TensorFlow version, whether XLA compiles and bfloat16 runs here
  (:func:`cutpaste_tf.benchmark.environment.environment`);
- ``serving``: the SavedModel's latency for one image against the bare network
  (:func:`cutpaste_tf.benchmark.speed.serving`);
- ``throughput``: training views/s (:func:`cutpaste_tf.benchmark.speed.training`) for every combination of
  precision (float32, mixed_bfloat16), XLA (off, on) and ``augment_on_device`` (off, on);
- ``training_run``: a short training run on one category (train, density, evaluation) with its
  image AUROC, its steps sized from the fastest measured combination to fill ``train_seconds``.

With a GPU it runs at the configured size (the paper's: 256x256, batch 96, 3-way) within
``budget_s``: a part that would start too late is skipped, saying so. Without one, every part
runs the same code at a tiny size (:data:`TINY`), and the JSON says what was shrunk and why.
The JSON is rewritten (atomically) after every part, so a process killed midway leaves the
parts it finished, with ``"complete": false``.
"""

from __future__ import annotations

import dataclasses
import datetime
import gc
import math
import tempfile
import time
import traceback
from typing import Any, Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from cutpaste_tf import data as data_lib
from cutpaste_tf import files
from cutpaste_tf.benchmark import speed
from cutpaste_tf.benchmark.environment import bf16_skip_reason, environment
from cutpaste_tf.config import RunConfig
from cutpaste_tf.pipeline import inputs, runner

SCHEMA_VERSION = 1
PRECISIONS = ("float32", "mixed_bfloat16")
MODES = ("auto", "full", "tiny")


@dataclasses.dataclass(frozen=True)
class CheckSize:
    """How large each part runs. ``image_size`` / ``sources`` None: the base config's."""

    image_size: Optional[int]
    sources: Optional[int]  # source images per batch (each gives one view per class)
    steps: int  # timed train steps per combination, with constant tensors and with the pipeline
    serve_steps: int  # serving rounds (speed.serving takes at least 20)
    train_steps: Optional[int]  # training-run steps; None: from the measured rate


FULL = CheckSize(image_size=None, sources=None, steps=10, serve_steps=50, train_steps=None)
TINY = CheckSize(image_size=32, sources=2, steps=2, serve_steps=20, train_steps=6)
# Seconds kept back for the training run's set-up, compilation, density and evaluation.
TRAIN_OVERHEAD_S = 60.0
MIN_TRAIN_SECONDS = 20.0
FALLBACK_STEPS_PER_S = 2.0  # training-run step rate when no combination was measured


def combination_name(precision: str, jit: bool, on_device: bool) -> str:
    """``<precision>_xla_<on|off>_augment_on_device_<on|off>``."""
    onoff = {True: "on", False: "off"}
    return f"{precision}_xla_{onoff[jit]}_augment_on_device_{onoff[on_device]}"


# The order they run in: the baseline first, then what an accelerator run uses (XLA).
COMBINATIONS: tuple[tuple[str, bool, bool], ...] = (
    ("float32", False, False), ("float32", True, False), ("mixed_bfloat16", True, False),
    ("mixed_bfloat16", True, True), ("float32", True, True), ("mixed_bfloat16", False, False),
    ("float32", False, True), ("mixed_bfloat16", False, True))
COMBINATION_NAMES: tuple[str, ...] = tuple(combination_name(*c) for c in COMBINATIONS)


def guarded(fn: Callable[[], dict]) -> dict:
    """``{"status": "ok", **fn(), "seconds": ...}``, or ``{"status": "error", "error": ...}``
    (the exception's type and message, and the last lines of its traceback) if it raised."""
    start = time.perf_counter()
    try:
        out = {"status": "ok", **fn()}
    except Exception as e:  # every failure is recorded; the check goes on
        tail = traceback.format_exc().strip().splitlines()[-6:]
        out = {"status": "error", "error": f"{type(e).__name__}: {e}"[:2000],
               "traceback_tail": tail}
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


def skipped(reason: str) -> dict:
    return {"status": "skipped", "reason": reason}


def choose_size(mode: str) -> tuple[str, CheckSize, Optional[str]]:
    """(``"full"`` or ``"tiny"``, its sizes, why it is shrunk or None). ``auto``: full with a
    GPU, tiny without."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "auto":
        mode = "full" if tf.config.list_physical_devices("GPU") else "tiny"
        if mode == "tiny":
            return mode, TINY, (
                f"no GPU found: every part runs at {TINY.image_size}x{TINY.image_size}, "
                f"{TINY.sources} source images per batch, {TINY.steps} timed steps per "
                f"combination and a {TINY.train_steps}-step training run, to check that the "
                "code paths run, not to measure speed")
    if mode == "tiny":
        return mode, TINY, "tiny size requested"
    return mode, FULL, None


def sized_config(base: RunConfig, size: CheckSize) -> RunConfig:
    """``base`` at the check's image size and batch (whole images' views)."""
    tcfg = base.train
    image = (size.image_size, size.image_size) if size.image_size else tcfg.image_size
    batch = size.sources * tcfg.num_views if size.sources else tcfg.batch_size
    return dataclasses.replace(base, train=dataclasses.replace(
        tcfg, image_size=tuple(image), batch_size=batch))


def with_combination(config: RunConfig, precision: str, jit: bool, on_device: bool
                     ) -> RunConfig:
    return dataclasses.replace(config, train=dataclasses.replace(
        config.train, precision=precision, jit_compile=jit, augment_on_device=on_device))




def measure_throughput(config: RunConfig, category: data_lib.CategoryData, steps: int,
                       wanted: Sequence[str], bf16_reason: Optional[str],
                       deadline: float) -> dict[str, dict]:
    """Views/s of every combination (in :data:`COMBINATIONS` order) that is wanted, runs here
    and starts before ``deadline`` (``time.monotonic()``); the others say why they did not."""
    out = {}
    for precision, jit, on_device in COMBINATIONS:
        name = combination_name(precision, jit, on_device)
        if name not in wanted:
            out[name] = skipped("not among the requested combinations")
        elif precision == "mixed_bfloat16" and bf16_reason:
            out[name] = skipped(bf16_reason)
        elif time.monotonic() > deadline:
            out[name] = skipped("time budget spent (the training run's share is kept back)")
        else:
            cfg = with_combination(config, precision, jit, on_device)
            out[name] = guarded(lambda c=cfg: speed.training(c, category, steps))
            gc.collect()
    return out


def fastest(throughput: dict[str, dict]) -> Optional[tuple[str, float]]:
    """(name, views/s through the pipeline) of the fastest measured combination, or None."""
    rates = [(r["train_images_per_s_pipeline"], name) for name, r in throughput.items()
             if r.get("status") == "ok" and r.get("train_images_per_s_pipeline")]
    if not rates:
        return None
    rate, name = max(rates)
    return name, float(rate)


def training_run(config: RunConfig, category: data_lib.CategoryData, steps: int) -> dict:
    """Trains ``steps`` steps on ``category``, fits the density, evaluates: image AUROC."""
    tcfg = config.train
    cfg = dataclasses.replace(
        config,
        train=dataclasses.replace(tcfg, epochs=1, head_epochs=0, steps_per_epoch=steps,
                                  checkpoint_every=steps, log_every=max(1, min(16, steps))),
        localization=dataclasses.replace(config.localization, gradcam=False, heatmaps=False))
    with tempfile.TemporaryDirectory() as tmp:
        result = runner.run_category(category, cfg, tmp, export_dir=None, verbose=False)
    last = result.get("final_train_metrics") or {}
    return {"category": category.name, "steps": steps, "image_auroc": float(result["auroc"]),
            "train_seconds": result.get("train_seconds_this_run"),
            "final_train_accuracy": last.get("accuracy"),
            "num_train": len(category.train_files), "num_test": len(category.test_files)}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def plain(value: Any) -> Any:
    """``value`` with NumPy scalars as Python ones, tuples as lists and non-finite floats as
    None, so that it is strict JSON."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def summarize(report: dict) -> None:
    """Fills ``skipped`` and ``errors``: part name -> reason / error, one level deep."""
    skips, errors = {}, {}
    for part in ("environment", "serving", "throughput", "training_run"):
        value = report.get(part)
        entries = value.items() if part == "throughput" and isinstance(value, dict) else [
            (None, value)]
        for name, entry in entries:
            if not isinstance(entry, dict):
                continue
            key = f"{part}/{name}" if name else part
            if entry.get("status") == "skipped":
                skips[key] = entry["reason"]
            elif entry.get("status") == "error":
                errors[key] = entry["error"]
    report["skipped"], report["errors"] = skips, errors


def run_check(base: RunConfig, spec: inputs.InputSpec, output: str, mode: str = "auto",
              budget_s: float = 420.0, train_seconds: float = 100.0,
              combinations: Optional[Sequence[str]] = None, verbose: bool = True) -> dict:
    """Runs every part and writes the report to ``output`` (atomically, after each part).

    Args:
      base: the settings measured (task, size, batch, augmentation); precision, XLA and
        ``augment_on_device`` are swept, whatever ``base`` says.
      spec: the images the pipeline and the training run read: one category
        (:func:`cutpaste_tf.pipeline.inputs.measured_category`; the shipped testdata's washer
        by default).
      output: the JSON file.
      mode: ``auto`` (full size with a GPU, tiny without), ``full`` or ``tiny``.
      budget_s: parts that would start after this many seconds (less the training run's
        share) are skipped; one part already running is not interrupted.
      train_seconds: seconds of training steps the training run aims at (full size).
      combinations: names of :data:`COMBINATION_NAMES` to measure (default: all).
    Returns the report.
    """
    start = time.monotonic()
    wanted = list(COMBINATION_NAMES if combinations is None else combinations)
    unknown = sorted(set(wanted) - set(COMBINATION_NAMES))
    if unknown:
        raise ValueError(f"unknown combinations {unknown}; choose from {list(COMBINATION_NAMES)}")
    mode, size, shrunk_reason = choose_size(mode)
    config = sized_config(base, size)
    report = new_report(config, size, mode, shrunk_reason, {
        "budget_s": budget_s, "train_seconds": train_seconds,
        "data_dir": spec.data_dir or inputs.shipped_testdata(),
        "category": inputs.DEFAULT_CATEGORY if spec.all_categories else spec.categories[0],
        "combinations": wanted})
    save = _saver(report, output, start, verbose)
    save("start")
    report["environment"] = guarded(environment)
    save("environment")
    data = guarded(lambda: {"category_data": inputs.measured_category(spec)})
    cat = data.pop("category_data", None)
    report["data"] = data
    image = cat.test_files[0] if cat and cat.test_files else None
    report["serving"] = guarded(lambda: speed.serving(config, size.serve_steps, image))
    save("serving")
    _timed_parts(report, config, size, cat, wanted, start + budget_s, train_seconds, save)
    report["complete"] = True
    report["finished_utc"] = _now()
    save("training run")
    return report


def new_report(config: RunConfig, size: CheckSize, mode: str, shrunk_reason: Optional[str],
               settings: dict) -> dict:
    """The report before any part has run: the mode, what is measured (``settings`` adds the
    run's budget, data and combinations) and which parts are shrunk, and why."""
    tcfg = config.train
    return {
        "schema_version": SCHEMA_VERSION, "complete": False, "started_utc": _now(),
        "mode": mode, "mode_reason": shrunk_reason or "a GPU is present (or full size requested)",
        "settings": {"task": tcfg.task, "image_size": list(tcfg.image_size),
                     "batch_size": tcfg.batch_size, "timed_steps": size.steps,
                     "serve_rounds": max(size.serve_steps, 20), **settings},
        "shrunk": ({part: shrunk_reason for part in ("serving", "throughput", "training_run")}
                   if shrunk_reason else {}),
    }


def _saver(report: dict, output: str, start: float, verbose: bool) -> Callable[[str], None]:
    """``save(part)``: the report, summarised and timed, written to ``output`` atomically."""
    def save(part: str) -> None:
        summarize(report)
        report["seconds"] = round(time.monotonic() - start, 1)
        files.write_json(output, plain(report))
        if verbose:
            print(f"[accelerator_check] {part} done after {report['seconds']} s -> {output}",
                  flush=True)

    return save


def _timed_parts(report: dict, config: RunConfig, size: CheckSize,
                 category: Optional[data_lib.CategoryData], wanted: Sequence[str], end: float,
                 train_seconds: float, save: Callable[[str], None]) -> None:
    """The throughput of each combination, then the training run, both skipped without data;
    the combinations stop in time to leave the training run its share of the budget (``end``,
    in ``time.monotonic()`` seconds)."""
    no_data = None if category else f"no training images: {report['data'].get('error')}"
    reserve = train_seconds + TRAIN_OVERHEAD_S if size.train_steps is None else 0.0
    if no_data:
        report["throughput"] = {name: skipped(no_data) for name in COMBINATION_NAMES}
    else:
        report["throughput"] = measure_throughput(config, category, size.steps, wanted,
                                                  bf16_skip_reason(report["environment"]),
                                                  end - reserve)
    save("throughput")
    if no_data:
        report["training_run"] = skipped(no_data)
    else:
        report["training_run"] = _training_part(config, category, size, report["throughput"],
                                                train_seconds, end)




def _training_part(config: RunConfig, category: data_lib.CategoryData, size: CheckSize,
                   throughput: dict, train_seconds: float, end: float) -> dict:
    """The training run in the fastest measured combination (float32 without XLA if none),
    with its steps from that combination's rate, cut to what the budget still allows."""
    best = fastest(throughput)
    name, rate = best if best else (combination_name("float32", False, False), None)
    combo = COMBINATIONS[COMBINATION_NAMES.index(name)]
    cfg = with_combination(config, *combo)
    if size.train_steps is not None:
        steps, basis = size.train_steps, "fixed (tiny size)"
    else:
        left = end - time.monotonic() - TRAIN_OVERHEAD_S
        seconds = min(train_seconds, max(left, MIN_TRAIN_SECONDS))
        per_s = rate / cfg.train.batch_size if rate else FALLBACK_STEPS_PER_S
        steps = max(1, int(seconds * per_s))
        basis = (f"{seconds:.0f} s at {per_s:.2f} steps/s "
                 + ("(measured)" if rate else "(assumed: no combination was measured)"))
    out = guarded(lambda: training_run(cfg, category, steps))
    out.update({"combination": name, "steps_basis": basis})
    return out
