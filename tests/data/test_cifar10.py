"""CIFAR-10 one-class data: the archive formats, the restricted unpickler, the per-class index."""

import io
import os
import pathlib
import pickle
import pickletools
import struct
import tarfile

import numpy as np
import pytest
import tensorflow as tf

from cutpaste_tf.data import DataError, cifar10, decode

PER_CLASS_TRAIN, PER_CLASS_TEST = 2, 3  # per batch file: 2 x 5 train batches = 10 per class


def _images(count: int, seed: int) -> np.ndarray:
    """Random RGB images [N, 32, 32, 3]; image 0 carries a known pattern."""
    images = np.random.default_rng(seed).integers(0, 200, (count, 32, 32, 3), dtype=np.uint8)
    images[0] = 0
    images[0, 0, 1, 0] = 255  # red at row 0, column 1
    images[0, 5, 0, 1] = 250  # green at row 5, column 0
    images[0, 31, 30, 2] = 245  # blue at row 31, column 30
    return images


def _batch(index: int, per_class: int) -> tuple[np.ndarray, list[int]]:
    labels = [c for c in range(10) for _ in range(per_class)]
    return _images(len(labels), index), labels


def _rows(images: np.ndarray) -> np.ndarray:
    """The real format: each row 1,024 red values row by row, then green, then blue."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), 3072)


def _batches():
    for i in range(1, 6):
        yield f"data_batch_{i}", *_batch(i, PER_CLASS_TRAIN)
    yield "test_batch", *_batch(0, PER_CLASS_TEST)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


class Python2Pickler(pickle._Pickler):
    """Pickles bytes as Python 2 pickled its str (BINSTRING), as in the real CIFAR-10 archive;
    Python 3 at protocol 2 writes bytes as a call of _codecs.encode instead."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj: bytes) -> None:
        n = len(obj)
        head = (pickle.SHORT_BINSTRING + bytes([n]) if n < 256
                else pickle.BINSTRING + struct.pack("<i", n))
        self.write(head + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def py2_pickle(value) -> bytes:
    """Protocol 2 as Python 2 with numpy 1 wrote it: numpy.core.multiarray, BINSTRING bytes."""
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(value)
    return buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def make_python_archive(path: pathlib.Path, skip: str = "", py2: bool = True) -> pathlib.Path:
    """A tiny cifar-10-python.tar.gz: dicts with bytes keys, pickled at protocol 2 (as Python 2
    did, or as Python 3 does with ``py2=False``)."""
    dumps = py2_pickle if py2 else (lambda value: pickle.dumps(value, protocol=2))
    with tarfile.open(path, "w:gz") as tar:
        for name, images, labels in _batches():
            if name == skip:
                continue
            batch = {b"batch_label": f"{name} of 5".encode(), b"labels": labels,
                     b"data": _rows(images),
                     b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))]}
            _add(tar, f"cifar-10-batches-py/{name}", dumps(batch))
        meta = {b"label_names": [c.encode() for c in cifar10.CLASSES]}
        _add(tar, "cifar-10-batches-py/batches.meta", dumps(meta))
    return path


def make_binary_archive(path: pathlib.Path) -> pathlib.Path:
    """A tiny cifar-10-binary.tar.gz: records of 1 label byte + 3,072 pixel bytes."""
    with tarfile.open(path, "w:gz") as tar:
        for name, images, labels in _batches():
            records = np.concatenate([np.array(labels, np.uint8)[:, None], _rows(images)], 1)
            _add(tar, f"cifar-10-batches-bin/{name}.bin", records.tobytes())
    return path


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    archive = make_python_archive(root / "cifar-10-python.tar.gz")
    manifest = cifar10.prepare(str(root / "data"), str(archive))
    return root, manifest


def _png(path) -> np.ndarray:
    return decode(tf.io.read_file(str(path))).numpy()


def test_pixels_survive_to_the_png_in_place_and_channel(prepared):
    root, manifest = prepared
    assert manifest["counts"]["train"] == {c: 5 * PER_CLASS_TRAIN for c in cifar10.CLASSES}
    assert manifest["counts"]["test"] == {c: PER_CLASS_TEST for c in cifar10.CLASSES}
    # Image 0 of data_batch_1 is the first airplane; training images are numbered in order.
    image = _png(root / "data" / "train" / "airplane" / "00000.png")
    expected = np.zeros((32, 32, 3), np.uint8)
    expected[0, 1, 0], expected[5, 0, 1], expected[31, 30, 2] = 255, 250, 245
    np.testing.assert_array_equal(image, expected)
    # A random image too: every pixel as generated.
    images, labels = _batch(2, PER_CLASS_TRAIN)
    first = 10 * PER_CLASS_TRAIN + 3  # data_batch_2, its 4th image (a class-1 image)
    np.testing.assert_array_equal(
        _png(root / "data" / "train" / cifar10.CLASSES[labels[3]] / f"{first:05d}.png"), images[3])


def test_the_test_archive_references_what_the_real_one_does(prepared):
    root, _ = prepared
    with tarfile.open(root / "cifar-10-python.tar.gz") as tar:
        data = tar.extractfile("cifar-10-batches-py/data_batch_1").read()
    names = {arg for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}
    assert names == {"numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}


def test_binary_python3_archive_and_extracted_folder_give_the_same_images(prepared, tmp_path):
    root, _ = prepared
    binary = make_binary_archive(tmp_path / "cifar-10-binary.tar.gz")
    cifar10.prepare(str(tmp_path / "bin"), str(binary))
    py3 = make_python_archive(tmp_path / "py3.tar.gz", py2=False)
    cifar10.prepare(str(tmp_path / "py3"), str(py3))
    with tarfile.open(root / "cifar-10-python.tar.gz") as tar:
        tar.extractall(tmp_path / "extracted", filter="data")
    cifar10.prepare(str(tmp_path / "folder"), str(tmp_path / "extracted"))
    for other in ("bin", "py3", "folder"):
        for split, name in (("train", "cat/00006.png"), ("test", "truck/00029.png")):
            np.testing.assert_array_equal(_png(tmp_path / other / split / name),
                                          _png(root / "data" / split / name))


def test_one_class_index_labels_the_other_nine_anomalous(prepared):
    root, _ = prepared
    data = cifar10.index_class(str(root / "data"), "bird")
    assert len(data.train_files) == 10 and all("/train/bird/" in f for f in data.train_files)
    assert len(data.test_files) == 10 * PER_CLASS_TEST
    normal = [f for f, label in zip(data.test_files, data.test_labels) if label == 0]
    assert len(normal) == PER_CLASS_TEST and all("/test/bird/" in f for f in normal)
    assert data.defect_types == sorted(c for c in cifar10.CLASSES if c != "bird")
    # The test set is on disk once; another class's index points at the same files.
    assert sorted(cifar10.index_class(str(root / "data"), "cat").test_files) == sorted(
        data.test_files)
    with pytest.raises(DataError, match="unknown CIFAR-10 class 'plane'"):
        cifar10.index_class(str(root / "data"), "plane")


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("payload", ["os.system", "builtins.eval", "codecs"])
def test_a_malicious_pickle_is_refused_and_never_runs(tmp_path, payload):
    marker = tmp_path / "pwned"
    if payload == "os.system":
        data = pickle.dumps({b"data": _Evil(marker)}, protocol=2)
    elif payload == "builtins.eval":
        data = pickle.dumps({b"data": 1}, protocol=2).replace(b"}", b"c__builtin__\neval\n)R}", 1)
    else:  # an allowed global abused: _codecs.encode with another codec than latin-1
        data = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x04\x00\x00\x00zlib\x86R."
    with pytest.raises(DataError, match=r"batch_x"):
        cifar10.parse_python_batch(data, "batch_x")
    assert not marker.exists()


def test_refusal_names_the_archive_member(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            _add(tar, f"cifar-10-batches-py/{name}",
                 pickle.dumps({b"data": _Evil(tmp_path / "pwned")}, protocol=2))
    with pytest.raises(DataError, match=r"evil.tar.gz: data_batch_1: refusing to unpickle it, "
                                        r"it references (posix|os|nt)\.system"):
        cifar10.prepare(str(tmp_path / "data"), str(archive))
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "data").exists() and os.listdir(tmp_path) == ["evil.tar.gz"]


def test_bad_sources_fail_with_the_path(tmp_path):
    with pytest.raises(DataError, match="'/no/such.tar.gz' does not exist"):
        cifar10.prepare(str(tmp_path / "a"), "/no/such.tar.gz")
    incomplete = make_python_archive(tmp_path / "incomplete.tar.gz", skip="test_batch")
    with pytest.raises(DataError, match="incomplete.tar.gz' lacks test_batch"):
        cifar10.prepare(str(tmp_path / "b"), str(incomplete))
    (tmp_path / "notatar.tar.gz").write_bytes(b"hello")
    with pytest.raises(DataError, match="notatar.tar.gz' is not a readable tar archive"):
        cifar10.prepare(str(tmp_path / "c"), str(tmp_path / "notatar.tar.gz"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds neither the python batches"):
        cifar10.prepare(str(tmp_path / "d"), str(tmp_path / "empty"))
    wrong = pickle.dumps({b"data": np.zeros((2, 3071), np.uint8), b"labels": [0, 1]}, protocol=2)
    with pytest.raises(DataError, match=r"x: b'data' must be uint8 \[N, 3072\]"):
        cifar10.parse_python_batch(wrong, "x")
    with pytest.raises(DataError, match="not a whole number of 3073-byte records"):
        cifar10.parse_binary_batch(b"\x00" * 3074, "y.bin")
    assert sorted(os.listdir(tmp_path)) == ["empty", "incomplete.tar.gz", "notatar.tar.gz"]


def test_a_prepared_folder_is_reused_and_a_foreign_one_refused(prepared, tmp_path):
    root, manifest = prepared
    assert cifar10.prepare(str(root / "data"), None) == manifest  # no source needed again
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="exists, is not empty and has no prepared.json"):
        cifar10.prepare(str(tmp_path / "mine"), str(root / "cifar-10-python.tar.gz"))


def test_launch_train_resolves_the_config_to_one_class_problems(prepared, parse_flags):
    """configs/cifar10.flags + launch.train's dataset dispatch, in process (a full training run
    is left to tests/launch/test_launch.py's MVTec runs: the pipeline after indexing is shared)."""
    from cutpaste_tf.pipeline import inputs
    from launch import configs

    root, _ = prepared
    parse_flags("--flagfile=configs/cifar10.flags", f"--data_dir={root / 'data'}",
                "--category=ship,cat")
    assert configs.run_config().train.image_size == (32, 32)
    spec = configs.input_spec()
    categories = inputs.resolve_categories(spec)
    inputs.validate_categories(categories, spec, (32, 32))
    assert [c.name for c in categories] == ["ship", "cat"]
    assert sum(categories[0].test_labels) == 9 * PER_CLASS_TEST


def test_launch_train_asks_for_the_source_of_an_unprepared_folder(tmp_path, parse_flags):
    from cutpaste_tf.pipeline import inputs
    from launch import configs

    parse_flags("--flagfile=configs/cifar10.flags", f"--data_dir={tmp_path / 'new'}")
    with pytest.raises(ValueError, match=r"is not prepared yet; give source="):
        inputs.resolve_categories(configs.input_spec())
    assert not (tmp_path / "new").exists()
