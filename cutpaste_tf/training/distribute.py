"""The one place a tf.distribute strategy is chosen: ``--strategy`` (and ``--tpu``).

- ``default``: no distribution (one device: the GPU if there is one, else the CPU);
- ``mirrored``: every local GPU (or the local CPU devices), synchronous all-reduce;
- ``multi_worker``: several machines, each described by the ``TF_CONFIG`` environment variable;
- ``tpu``: a Cloud TPU (``--tpu``: its name or ``grpc://`` address, ``local`` on a TPU VM);
- ``auto``: ``tpu`` if ``--tpu`` is set, else ``multi_worker`` if ``TF_CONFIG`` names more
  than one task, else ``mirrored`` with more than one GPU, else ``default``.

A multi-worker strategy must exist before TensorFlow runs anything, so the launcher builds the
strategy first.
"""

from __future__ import annotations

import json
import os
import urllib.error
from typing import Optional

import tensorflow as tf

from cutpaste_tf import devices

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")


def resolve_name(name: str, tpu: Optional[str] = None) -> str:
    """The concrete strategy ``auto`` stands for on this machine; other names unchanged."""
    if name not in STRATEGIES:
        raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    if name != "auto":
        return name
    if tpu:
        return "tpu"
    cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    if sum(len(tasks) for tasks in cluster.values()) > 1:
        return "multi_worker"
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return "mirrored"
    return "default"


def make_strategy(name: str, tpu: Optional[str] = None) -> tf.distribute.Strategy:
    """Builds the strategy ``name`` (see the module docstring)."""
    name = resolve_name(name, tpu)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError("--strategy=multi_worker needs the TF_CONFIG environment variable "
                             "(the cluster and this worker's task)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if not tpu:
        raise ValueError("--strategy=tpu needs --tpu (the TPU's name, grpc:// address, or "
                         "'local' on a TPU VM)")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    except (OSError, ValueError, RuntimeError, tf.errors.OpError) as e:  # URLError is an OSError
        raise ValueError(f"--tpu={tpu}: cannot resolve the TPU: {tpu_cause(e)} (off Google "
                         "Cloud, pass --tpu=grpc://<address>:8470 or run on a TPU VM)") from e


def tpu_cause(error: BaseException) -> str:
    """The cause of a failed TPU resolution in one line: a metadata-server lookup's reason
    (``Name or service not known``), TensorFlow's message, or the error's text."""
    if isinstance(error, urllib.error.URLError):
        reason = error.reason
        text = getattr(reason, "strerror", None) or str(reason)
    elif isinstance(error, tf.errors.OpError):
        text = error.message
    else:
        text = str(error) or type(error).__name__
    text = " ".join(text.split("\n")[0].split())
    return text if len(text) <= 300 else text[:297] + "..."


def check_accelerator(strategy: tf.distribute.Strategy, required: bool) -> None:
    """With ``required`` (``--require_accelerator``), a ValueError unless ``strategy`` computes
    on a GPU or TPU: a run that would fall back to the CPU stops before it reads any data."""
    if required and not devices.has_accelerator(strategy):
        raise ValueError(
            f"--require_accelerator: TensorFlow sees no GPU or TPU here, only the "
            f"{devices.device_summary(strategy)}. For an NVIDIA GPU: pip install "
            "\"tensorflow[and-cuda]\", then python -c \"import tensorflow as tf; "
            "print(tf.config.list_physical_devices('GPU'))\" must list it (and "
            "CUDA_VISIBLE_DEVICES must not hide it); for a TPU: --strategy=tpu --tpu=...")
