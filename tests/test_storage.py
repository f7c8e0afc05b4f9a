"""Remote paths that cannot be reached: the cause in one line, not "does not exist".

``tf.io.gfile`` is monkeypatched to behave as TensorFlow does for an unreachable bucket: ``isdir``
answers False, ``exists`` and ``stat`` raise the ``tf.errors`` type and message TF raises (the
messages are TF 2.21's, recorded without network, without credentials and without access).
"""

from __future__ import annotations

import pytest
import tensorflow as tf

from cutpaste_tf import storage
from cutpaste_tf.data import index, layouts

NO_NETWORK = tf.errors.FailedPreconditionError(
    None, None, "Error executing an HTTP request: libcurl code 6 meaning 'Could not resolve "
    "hostname', error details: Could not resolve host: www.googleapis.com\n\t when reading "
    "metadata of gs://b/x")
DENIED = tf.errors.PermissionDeniedError(
    None, None, "Error executing an HTTP request: HTTP response code 403 with body '{\n"
    '  "error": {\n    "code": 403,\n    "message": "ci@p.iam.gserviceaccount.com does not '
    "have storage.objects.list access to the Google Cloud Storage bucket. Permission "
    "'storage.objects.list' denied on resource (or it may not exist).\",\n    \"errors\": [\n"
    "      {\n        \"message\": \"second\"\n      }\n    ]\n  }\n}\n'\n\t when reading "
    "metadata of gs://b/x")
NO_CREDENTIALS = tf.errors.UnauthenticatedError(
    None, None, "Could not locate the credentials file.")
NO_S3 = tf.errors.UnimplementedError(
    None, None, "File system scheme 's3' not implemented (file: 's3://b/x')")


def unreachable(monkeypatch: pytest.MonkeyPatch, error: tf.errors.OpError) -> list[str]:
    """``tf.io.gfile`` as TF behaves when every remote path's store raises ``error``; returns
    the paths ``stat`` was asked about."""
    asked: list[str] = []
    real_isdir, real_exists, real_stat = tf.io.gfile.isdir, tf.io.gfile.exists, tf.io.gfile.stat

    def stat(path):
        if not storage.is_remote(path):
            return real_stat(path)
        asked.append(path)
        raise error

    def exists(path):
        return stat(path) is not None if storage.is_remote(path) else real_exists(path)

    def isdir(path):  # TF's isdir turns every OpError into False
        return False if storage.is_remote(path) else real_isdir(path)

    monkeypatch.setattr(tf.io.gfile, "stat", stat)
    monkeypatch.setattr(tf.io.gfile, "exists", exists)
    monkeypatch.setattr(tf.io.gfile, "isdir", isdir)
    return asked


@pytest.mark.parametrize("error, line", [
    (NO_NETWORK, "cannot reach Cloud Storage: Could not resolve host: www.googleapis.com"),
    (DENIED, "Cloud Storage denied access: ci@p.iam.gserviceaccount.com does not have "
     "storage.objects.list access to the Google Cloud Storage bucket. Permission "
     "'storage.objects.list' denied on resource (or it may not exist)."),
    (NO_CREDENTIALS, "Cloud Storage needs credentials (gcloud auth application-default login, "
     "or GOOGLE_APPLICATION_CREDENTIALS): Could not locate the credentials file."),
])
def test_the_cause_in_one_line(monkeypatch, error, line):
    unreachable(monkeypatch, error)
    assert storage.problem("gs://b/x") == line


def test_a_file_system_this_tensorflow_lacks(monkeypatch):
    unreachable(monkeypatch, NO_S3)
    assert storage.problem("s3://b/x") == (
        "this TensorFlow cannot read s3:// paths: File system scheme 's3' not implemented "
        "(file: 's3://b/x')")


def test_no_problem_for_local_paths_and_paths_the_store_answered(monkeypatch, tmp_path):
    asked = unreachable(monkeypatch, NO_NETWORK)
    assert storage.problem(str(tmp_path / "missing")) is None
    assert storage.problem("file:///tmp/x") is None and asked == []
    monkeypatch.setattr(tf.io.gfile, "stat", lambda path: (_ for _ in ()).throw(
        tf.errors.NotFoundError(None, None, f"{path} not found")))
    assert storage.problem("gs://b/missing") is None  # reached: it does not exist


def test_a_long_message_is_cut():
    error = tf.errors.UnavailableError(None, None, "x" * 1000 + "\nsecond line")
    line = storage.describe(error, "gs://b/x")
    assert line.startswith("cannot reach Cloud Storage: xxx") and line.endswith("...")
    assert len(line) == len("cannot reach Cloud Storage: ") + storage.MAX_DETAIL
    assert "\n" not in line


@pytest.mark.parametrize("error, cause", [(NO_NETWORK, "Could not resolve host"),
                                          (DENIED, "denied access")])
def test_data_dirs_say_why_not_that_they_do_not_exist(monkeypatch, error, cause):
    unreachable(monkeypatch, error)
    with pytest.raises(index.DataError) as raised:
        index.mvtec_categories("gs://b/x")
    assert cause in str(raised.value) and "does not exist" not in str(raised.value)
    assert str(raised.value).startswith("data directory 'gs://b/x': ")
    for find in (lambda: layouts.index_visa("gs://b/visa", "candle"),  # tf.io.gfile.exists
                 lambda: layouts.btad_categories("gs://b/btad")):  # tf.io.gfile.isdir
        with pytest.raises(index.DataError, match=cause) as raised:
            find()
        assert "not found" not in str(raised.value) and "\n" not in str(raised.value)


def test_a_local_dir_that_does_not_exist_still_says_so(tmp_path):
    with pytest.raises(index.DataError, match="does not exist or is not a directory"):
        index.mvtec_categories(str(tmp_path / "missing"))
