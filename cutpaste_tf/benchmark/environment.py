"""What the accelerator check records about the machine: its devices, TensorFlow and Keras
versions, and whether XLA compiles and bfloat16 runs here (and natively); and the one-phrase
device description a training run starts with (:func:`device_summary`)."""

from __future__ import annotations

import collections
import os
import platform
from typing import Any, Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from cutpaste_tf.reporting.report import hardware


def _probe(fn: Callable[[], Any]) -> dict:
    try:
        fn()
        return {"available": True}
    except Exception as e:  # an unavailable feature, recorded
        return {"available": False, "error": f"{type(e).__name__}: {e}"[:1000]}


def _xla_probe() -> None:
    x = tf.random.uniform([64, 64])
    y = tf.function(lambda a: tf.nn.relu(a @ a), jit_compile=True)(x)
    np.testing.assert_allclose(y.numpy(), tf.nn.relu(x @ x).numpy(), rtol=1e-3, atol=1e-3)


def _bf16_probe() -> None:
    images = tf.cast(tf.random.uniform([2, 16, 16, 8]), tf.bfloat16)
    kernel = tf.cast(tf.random.uniform([3, 3, 8, 8]), tf.bfloat16)
    out = tf.nn.conv2d(images, kernel, 1, "SAME")
    if out.dtype != tf.bfloat16 or not np.all(np.isfinite(tf.cast(out, tf.float32).numpy())):
        raise RuntimeError("a bfloat16 convolution gave no finite bfloat16 result")


def _cpu_has_native_bf16() -> Optional[bool]:
    """Whether the CPU lists bfloat16 instructions (AVX512_BF16 or AMX), None if unknown."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = f.read()
    except OSError:
        return None
    return "avx512_bf16" in flags or "amx_bf16" in flags


def environment() -> dict:
    """Devices, versions, and whether XLA and bfloat16 work on this machine."""
    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        capability = details.get("compute_capability")
        gpus.append({"name": details.get("device_name", device.name),
                     "compute_capability": list(capability) if capability else None})
    bf16 = _probe(_bf16_probe)
    if gpus:
        capabilities = [g["compute_capability"] for g in gpus if g["compute_capability"]]
        bf16["native"] = bool(capabilities) and all(c[0] >= 8 for c in capabilities)
    else:
        bf16["native"] = _cpu_has_native_bf16()
    return {"hardware": hardware(),
            "devices": [d.name for d in tf.config.list_physical_devices()],
            "gpus": gpus, "tensorflow": tf.__version__, "keras": _keras_version(),
            "built_with_cuda": tf.test.is_built_with_cuda(),
            "xla": _probe(_xla_probe), "bfloat16": bf16}


def _keras_version() -> str:
    import keras
    return keras.__version__


def bf16_skip_reason(env: dict) -> Optional[str]:
    """Why mixed_bfloat16 is not measured here, or None."""
    bf16 = env.get("bfloat16") or {}
    if not bf16.get("available", False):
        return f"bfloat16 does not run on this machine: {bf16.get('error', 'probe failed')}"
    if env.get("gpus") and not bf16.get("native"):
        return ("the GPU has no native bfloat16 (compute capability below 8.0): it would be "
                "emulated and slow")
    return None


def describe_devices(gpus: Sequence[str], tpu_cores: int, cpu: str, cpu_cores: int) -> str:
    """The devices a run computes on, in words: ``TPU (8 cores)``, ``GPU: 2 x NVIDIA A100``
    (one ``N x model`` per GPU model), else ``CPU (<model>, N cores)``."""
    if tpu_cores:
        return f"TPU ({tpu_cores} core{'s' if tpu_cores != 1 else ''})"
    if gpus:
        counts = collections.Counter(gpus)
        return "GPU: " + ", ".join(f"{n} x {name}" for name, n in counts.items())
    return f"CPU ({cpu}, {cpu_cores} core{'s' if cpu_cores != 1 else ''})"


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


def _strategy_gpus(strategy: tf.distribute.Strategy) -> list[str]:
    """The model names of the GPUs of this host that ``strategy`` computes on: each local
    replica's under a mirrored strategy, the first GPU without one (where TensorFlow puts it)."""
    physical = tf.config.list_physical_devices("GPU")
    names = [tf.config.experimental.get_device_details(d).get("device_name", d.name)
             for d in physical]
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
