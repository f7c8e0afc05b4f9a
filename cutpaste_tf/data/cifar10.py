"""CIFAR-10 as ten one-class problems (Section 5.4 of the paper; the protocol of its refs [20, 52]).

For class ``c``: train on the 5,000 training images of ``c``; test on all 10,000 test images,
those of ``c`` normal (label 0) and the other nine classes anomalous (label 1). The mean AUROC
over the ten classes is the paper's number.

:func:`prepare` reads a local copy of CIFAR-10 — ``cifar-10-python.tar.gz``,
``cifar-10-binary.tar.gz`` or the folder extracted from either — and writes every image once::

    <data_dir>/train/<class>/<index>.png     (5,000 per class)
    <data_dir>/test/<class>/<index>.png      (1,000 per class)
    <data_dir>/prepared.json

:func:`index_class` then builds one class's :class:`CategoryData` from those files, so the test
set exists once on disk and not ten times. The python version is a set of pickles; they are read
with :class:`SafeUnpickler`, which builds only numpy arrays, lists, dicts, strings and numbers
and refuses every other global a pickle may name (a pickle can otherwise run any code).
"""

from __future__ import annotations

import codecs
import io
import os
import pickle  # Only through SafeUnpickler (see tests/serving/test_artifacts.py's audit).
import tarfile
from typing import Any, Iterator

import numpy as np
import tensorflow as tf

from cutpaste_tf.data import prepared
from cutpaste_tf.data.index import CategoryData, DataError, list_images

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
SIDE = 32
PIXELS = SIDE * SIDE * 3
read_manifest = prepared.read_manifest


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as Python 3 pickles bytes at protocol 2, for latin-1 only."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


# Everything a CIFAR batch pickle may reference: an ndarray is rebuilt from
# numpy.core.multiarray._reconstruct, numpy.ndarray and numpy.dtype (numpy 2 names the first
# numpy._core.multiarray); bytes pickled by Python 3 at protocol 2 go through _codecs.encode.
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class SafeUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers only (Python docs, "Restricting Globals")."""

    def __init__(self, file: io.BufferedIOBase, where: str):
        super().__init__(file, encoding="bytes")
        self.where = where

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_GLOBALS:
            return ALLOWED_GLOBALS[(module, name)]
        raise DataError(f"{self.where}: refusing to unpickle it, it references {module}.{name}; "
                        "a CIFAR-10 batch holds only numpy arrays, lists and strings")


def safe_unpickle(data: bytes, where: str) -> Any:
    """Unpickles ``data`` with :class:`SafeUnpickler`; errors name ``where``."""
    try:
        return SafeUnpickler(io.BytesIO(data), where).load()
    except DataError:
        raise
    except Exception as e:  # a truncated or foreign file: any unpickling error
        raise DataError(f"{where}: not a readable CIFAR-10 batch pickle ({e})") from None


def parse_python_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """A python-version batch -> (images uint8 [N, 32, 32, 3] RGB, labels int [N])."""
    batch = safe_unpickle(data, where)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{where}: expected a dict with b'data' and b'labels'")
    pixels, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    if pixels.dtype != np.uint8 or pixels.ndim != 2 or pixels.shape[1] != PIXELS:
        raise DataError(f"{where}: b'data' must be uint8 [N, {PIXELS}], got {pixels.dtype} "
                        f"{pixels.shape}")
    return _images(pixels, labels, where)


def parse_binary_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """A binary-version batch (records of 1 label byte + 3,072 pixel bytes) -> as above."""
    if not data or len(data) % (PIXELS + 1):
        raise DataError(f"{where}: {len(data)} bytes is not a whole number of "
                        f"{PIXELS + 1}-byte records")
    records = np.frombuffer(data, np.uint8).reshape(-1, PIXELS + 1)
    return _images(records[:, 1:], records[:, 0], where)


def _images(pixels: np.ndarray, labels: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    # Each row is channel-major: 1,024 red values (row by row), then green, then blue.
    labels = labels.astype(np.int64).reshape(-1)
    if len(labels) != len(pixels):
        raise DataError(f"{where}: {len(pixels)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise DataError(f"{where}: labels must be 0..9, found {labels.min()}..{labels.max()}")
    return pixels.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1), labels


def _members(source: str) -> dict[str, bytes] | dict[str, str]:
    """Basename -> bytes (archive) or path (folder) of every file of ``source``."""
    if tf.io.gfile.isdir(source):
        found = {}
        for sub in ("", "cifar-10-batches-py", "cifar-10-batches-bin"):
            folder = os.path.join(source, sub)
            if tf.io.gfile.isdir(folder):
                for name in tf.io.gfile.listdir(folder):
                    found.setdefault(name, os.path.join(folder, name))
        return found
    if not tf.io.gfile.exists(source):
        raise DataError(f"CIFAR-10 source {source!r} does not exist; expected "
                        "cifar-10-python.tar.gz, cifar-10-binary.tar.gz or their folder")
    try:
        with tf.io.gfile.GFile(source, "rb") as f, tarfile.open(fileobj=f, mode="r:*") as tar:
            # Read into memory, never extracted: member paths do not matter (no traversal).
            return {os.path.basename(m.name): tar.extractfile(m).read()
                    for m in tar.getmembers() if m.isfile()}
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"CIFAR-10 source {source!r} is not a readable tar archive ({e})") from None


def read_source(source: str) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yields ("train" | "test", images, labels) for every batch of a CIFAR-10 copy."""
    members = _members(source)
    python = list(TRAIN_BATCHES) + [TEST_BATCH]
    binary = [f"{n}.bin" for n in python]
    for names, parse in ((python, parse_python_batch), (binary, parse_binary_batch)):
        if any(n in members for n in names):
            missing = [n for n in names if n not in members]
            if missing:
                raise DataError(f"CIFAR-10 source {source!r} lacks {', '.join(missing)}")
            for name in names:
                content = members[name]
                if isinstance(content, str):
                    with tf.io.gfile.GFile(content, "rb") as f:
                        content = f.read()
                split = "test" if name.startswith(TEST_BATCH) else "train"
                yield (split, *parse(content, f"{source}: {name}"))
            return
    raise DataError(f"CIFAR-10 source {source!r} holds neither the python batches "
                    f"({', '.join(python)}) nor the binary ones (data_batch_1.bin, ...)")


def prepare(data_dir: str, source: str | None) -> dict[str, Any]:
    """Writes every CIFAR-10 image of ``source`` as a PNG under ``data_dir`` (once)."""

    def write(tmp_dir: str) -> dict[str, Any]:
        counts = {"train": [0] * len(CLASSES), "test": [0] * len(CLASSES)}
        for split, images, labels in read_source(source):
            for image, label in zip(images, labels):
                folder = os.path.join(tmp_dir, split, CLASSES[label])
                if not counts[split][label]:
                    tf.io.gfile.makedirs(folder)
                index = sum(counts[split])
                prepared.write_png(os.path.join(folder, f"{index:05d}.png"), image)
                counts[split][label] += 1
        for split, per_class in counts.items():
            if 0 in per_class:
                raise DataError(f"CIFAR-10 source {source!r}: no {split} images of class "
                                f"{CLASSES[per_class.index(0)]!r}")
        return {"counts": {s: dict(zip(CLASSES, c)) for s, c in counts.items()},
                "source": os.path.basename(os.path.normpath(source))}

    if source is None and read_manifest(data_dir) is None:
        raise DataError(f"{data_dir!r} holds no prepared CIFAR-10; give its source archive")
    return prepared.prepare_once(data_dir, {"dataset": "cifar10"}, write)


def index_class(data_dir: str, name: str) -> CategoryData:
    """One-class problem ``name``: its training images vs. the whole test set."""
    if name not in CLASSES:
        raise DataError(f"unknown CIFAR-10 class {name!r}; the classes: {', '.join(CLASSES)}")
    train = list_images(os.path.join(data_dir, "train", name))
    if not train:
        raise DataError(f"no training images of class {name!r} under {data_dir!r}/train")
    files, labels, defects = [], [], []
    for other in CLASSES:
        found = list_images(os.path.join(data_dir, "test", other))
        if not found:
            raise DataError(f"no test images of class {other!r} under {data_dir!r}/test")
        files += found
        labels += [int(other != name)] * len(found)
        defects += ["good" if other == name else other] * len(found)
    return CategoryData(name, "object", False, tuple(train), tuple(files), tuple(labels),
                        tuple(defects), (None,) * len(files))
