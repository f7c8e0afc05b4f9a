"""Why a remote path (``gs://``, ``s3://``, ...) cannot be reached, in one line.

``tf.io.gfile.isdir`` answers False for a bucket it cannot reach (no network, no credentials,
no permission), so "does not exist" would be the wrong message; ``tf.io.gfile.stat`` raises the
real error, which :func:`problem` turns into one line such as ``cannot reach Cloud Storage:
Could not resolve host: storage.googleapis.com``.
"""

from __future__ import annotations

import re

import tensorflow as tf

STORES = {"gs": "Cloud Storage", "s3": "S3", "hdfs": "HDFS", "az": "Azure Blob Storage"}
MAX_DETAIL = 300  # characters of TF's message kept
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_JSON_MESSAGE = re.compile(r'"message"\s*:\s*"((?:[^"\\]|\\.)*)"')


def scheme(path: str) -> str | None:
    """The scheme of a URL-like path (``gs``), None for a local path."""
    match = _SCHEME.match(path)
    return match.group(1).lower() if match else None


def is_remote(path: str) -> bool:
    """Whether ``path`` names a file system other than the local disk (``file://`` and web
    addresses are not storage paths)."""
    return scheme(path) not in (None, "file", "http", "https")


def describe(error: tf.errors.OpError, path: str) -> str:
    """One line saying what ``error``, raised by ``tf.io.gfile`` for ``path``, means."""
    name = scheme(path) or "local"
    store = STORES.get(name, f"{name}://")
    detail = _detail(error.message)
    if isinstance(error, tf.errors.PermissionDeniedError):
        return f"{store} denied access: {detail}"
    if isinstance(error, tf.errors.UnauthenticatedError):
        hint = (" (gcloud auth application-default login, or GOOGLE_APPLICATION_CREDENTIALS)"
                if name == "gs" else "")
        return f"{store} needs credentials{hint}: {detail}"
    if isinstance(error, tf.errors.UnimplementedError):
        return f"this TensorFlow cannot read {name}:// paths: {detail}"
    return f"cannot reach {store}: {detail}"


def problem(path: str) -> str | None:
    """Why the store of a remote ``path`` cannot say whether it exists, in one line; None for a
    local path and for a remote one its store answered (found or not found)."""
    if not is_remote(path):
        return None
    try:
        tf.io.gfile.stat(path)
    except tf.errors.NotFoundError:
        return None
    except tf.errors.OpError as e:
        return describe(e, path)
    return None


def _detail(message: str) -> str:
    """The informative part of a TF file-system message, on one line: the ``message`` of a JSON
    error body, else what follows ``error details:`` in a libcurl error, else the message."""
    found = _JSON_MESSAGE.search(message)
    if found:
        text = found.group(1).replace('\\"', '"')
    else:
        text = message.split("\n")[0]
        if "error details: " in text:
            text = text.split("error details: ", 1)[1]
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL else text[:MAX_DETAIL - 3] + "..."
