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
    """Moves a completely written ``tmp_dir`` to ``final_dir``, replacing what was there."""
    old = None
    if tf.io.gfile.exists(final_dir):
        old = f"{final_dir}.old-{uuid.uuid4().hex[:8]}"
        tf.io.gfile.rename(final_dir, old)
    tf.io.gfile.rename(tmp_dir, final_dir)
    if old:
        tf.io.gfile.rmtree(old)
