"""The machine, described once: what a run's start line names (:func:`device_summary`), what
``--require_accelerator`` checks (:func:`has_accelerator`), and the hardware that the HTML
reports and ``benchmark.json`` record (:func:`hardware`)."""

from __future__ import annotations

import collections
import os
import platform
from typing import Optional, Sequence

import tensorflow as tf


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name") and ":" in line:
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown model"


def cpu_cores() -> int:
    """The cores this process may run on (its affinity, which a container limits)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def gpu_names() -> list[str]:
    """The model names of this host's GPUs, in device order."""
    return [tf.config.experimental.get_device_details(d).get("device_name", d.name)
            for d in tf.config.list_physical_devices("GPU")]


def hardware() -> dict:
    """What a run, a report or a benchmark was measured on: the CPU's model and the cores this
    process may use, the GPUs, and the TensorFlow and Python versions."""
    return {"cpu": cpu_model(), "cpu_cores": cpu_cores(), "gpus": gpu_names(),
            "tensorflow": tf.__version__, "python": platform.python_version()}


def describe_devices(gpus: Sequence[str], tpu_cores: int, cpu: str, cores: int) -> str:
    """The devices a run computes on, in words: ``TPU (8 cores)``, ``GPU: 2 x NVIDIA A100``
    (one ``N x model`` per GPU model), else ``CPU (<model>, N cores)``."""
    if tpu_cores:
        return f"TPU ({tpu_cores} core{'s' if tpu_cores != 1 else ''})"
    if gpus:
        counts = collections.Counter(gpus)
        return "GPU: " + ", ".join(f"{n} x {name}" for name, n in counts.items())
    return f"CPU ({cpu}, {cores} core{'s' if cores != 1 else ''})"


def _strategy_gpus(strategy: tf.distribute.Strategy) -> list[str]:
    """The model names of the GPUs of this host that ``strategy`` computes on: each local
    replica's under a mirrored strategy, the first GPU without one (where TensorFlow puts it)."""
    names = gpu_names()
    try:
        workers = strategy.extended.worker_devices
    except (AttributeError, RuntimeError):  # the default strategy has no worker devices
        return names[:1]
    used = [int(d.rsplit(":", 1)[1]) for d in workers if "GPU:" in d.upper()]
    return [names[i] for i in used if i < len(names)]


def _tpu_cores(strategy: tf.distribute.Strategy) -> int:
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return strategy.num_replicas_in_sync
    return 0


def device_summary(strategy: Optional[tf.distribute.Strategy] = None) -> str:
    """What ``strategy`` (default: the current one) trains on here, for a run's start line:
    see :func:`describe_devices`. A CPU in this line where a GPU was expected means TensorFlow
    found no GPU (a missing CUDA install, or hidden by ``CUDA_VISIBLE_DEVICES``)."""
    strategy = strategy or tf.distribute.get_strategy()
    return describe_devices(_strategy_gpus(strategy), _tpu_cores(strategy), cpu_model(),
                            cpu_cores())


def has_accelerator(strategy: Optional[tf.distribute.Strategy] = None) -> bool:
    """Whether ``strategy`` computes on a GPU or TPU rather than on the CPU alone."""
    strategy = strategy or tf.distribute.get_strategy()
    return bool(_tpu_cores(strategy) or _strategy_gpus(strategy))
