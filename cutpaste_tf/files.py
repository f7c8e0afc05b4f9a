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
    """Writes ``data`` to ``path`` atomically: on local disks through a temporary name and a
    rename; on object stores (``gs://``, ``ram://``) directly, as an object appears whole when
    its writer closes (and a rename there is a copy)."""
    parent = os.path.dirname(path)
    if parent:
        tf.io.gfile.makedirs(parent)
    if "://" in path:
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(data)
        return
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
        move_dir(final_dir, old)
    move_dir(tmp_dir, final_dir)
    if old:
        remove_dir(old)
    for stale in _set_aside(final_dir):  # left by an earlier, killed replace
        remove_dir(stale)


def recover_dir(final_dir: str) -> bool:
    """Restores ``final_dir`` from a copy that a killed :func:`replace_dir` set aside.

    Returns True if it restored one. Does nothing while ``final_dir`` exists.
    """
    if tf.io.gfile.exists(final_dir):
        return False
    aside = _set_aside(final_dir)
    if not aside:
        return False
    move_dir(aside[-1], final_dir)
    return True


_OLD = ".old-"


def _set_aside(final_dir: str) -> list[str]:
    parent, name = os.path.split(final_dir.rstrip("/"))
    if not tf.io.gfile.isdir(parent or "."):
        return []
    return sorted(os.path.join(parent, n.rstrip("/")) for n in tf.io.gfile.listdir(parent or ".")
                  if n.rstrip("/").startswith(name + _OLD))


def remove_dir(path: str) -> None:
    """Deletes a directory tree (on object stores, every real file under it)."""
    try:
        tf.io.gfile.rmtree(path)
    except tf.errors.NotFoundError:  # a listed name that is no file (see move_dir)
        for root, _, names in tf.io.gfile.walk(path):
            for name in names:
                if tf.io.gfile.exists(os.path.join(root, name)):
                    tf.io.gfile.remove(os.path.join(root, name))


# Written last when a directory is copied, so a reader that waits for it sees a whole model.
_MARKERS = ("saved_model.pb", "checkpoint")


def move_dir(src: str, dst: str) -> None:
    """Renames a directory; on object stores and other non-local filesystems (``gs://``,
    ``ram://``), where a directory rename is not one operation, copies its files (markers such
    as ``saved_model.pb`` last) and then deletes ``src``."""
    if "://" not in src:
        tf.io.gfile.rename(src, dst)
        return
    paths = [os.path.join(root, name) for root, _, names in tf.io.gfile.walk(src)
             for name in names]
    # Listing an object store by prefix can name things that are not files (TensorFlow's
    # ram:// lists "assets.extra/x" under "assets/" as ".extra"): keep only real files.
    paths = [p for p in paths if tf.io.gfile.exists(p) and not tf.io.gfile.isdir(p)]
    paths.sort(key=lambda p: os.path.basename(p) in _MARKERS)
    for path in paths:
        target = dst + path[len(src):]
        tf.io.gfile.makedirs(os.path.dirname(target))
        tf.io.gfile.copy(path, target, overwrite=True)
    remove_dir(src)
