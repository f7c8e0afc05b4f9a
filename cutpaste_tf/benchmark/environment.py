"""What the accelerator check records about the machine: the hardware (:mod:`cutpaste_tf.devices`),
its devices, TensorFlow and Keras versions, and whether XLA compiles and bfloat16 runs here (and
natively)."""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
import tensorflow as tf

from cutpaste_tf import devices


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
    return {"hardware": devices.hardware(),
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
