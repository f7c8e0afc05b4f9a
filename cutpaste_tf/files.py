"""Writing files so that a reader never sees half of one: temporary name, then rename.

All paths go through ``tf.io.gfile``, so they may be local or ``gs://``.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import tensorflow as tf


def write_bytes(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically (on local disks; GCS objects appear whole anyway)."""
    parent = os.path.dirname(path)
    if parent:
        tf.io.gfile.makedirs(parent)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with tf.io.gfile.GFile(tmp, "wb") as f:
            f.write(data)
        tf.io.gfile.rename(tmp, path, overwrite=True)
    finally:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.remove(tmp)


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str, value: Any) -> None:
    write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def read_json(path: str) -> Any:
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def replace_dir(tmp_dir: str, final_dir: str) -> None:
    """Moves a completely written ``tmp_dir`` to ``final_dir``, replacing what was there.

    A directory cannot be renamed over a non-empty one, so the old one is first renamed aside
    to ``<final_dir>.old-<id>`` and deleted once the new one is in place. A process killed
    between the two renames leaves no ``final_dir`` but the complete old one beside it;
    :func:`recover_dir` (called here first, and by readers) puts it back.
    """
    recover_dir(final_dir)
    old = None
    if tf.io.gfile.exists(final_dir):
        old = f"{final_dir}{_OLD}{uuid.uuid4().hex[:8]}"
        tf.io.gfile.rename(final_dir, old)
    tf.io.gfile.rename(tmp_dir, final_dir)
    if old:
        tf.io.gfile.rmtree(old)
    for stale in _set_aside(final_dir):  # left by an earlier, killed replace
        tf.io.gfile.rmtree(stale)


def recover_dir(final_dir: str) -> bool:
    """Restores ``final_dir`` from a copy that a killed :func:`replace_dir` set aside.

    Returns True if it restored one. Does nothing while ``final_dir`` exists.
    """
    if tf.io.gfile.exists(final_dir):
        return False
    aside = _set_aside(final_dir)
    if not aside:
        return False
    tf.io.gfile.rename(aside[-1], final_dir)
    return True


_OLD = ".old-"


def _set_aside(final_dir: str) -> list[str]:
    parent, name = os.path.split(final_dir.rstrip("/"))
    if not tf.io.gfile.isdir(parent or "."):
        return []
    return sorted(os.path.join(parent, n.rstrip("/")) for n in tf.io.gfile.listdir(parent or ".")
                  if n.rstrip("/").startswith(name + _OLD))
