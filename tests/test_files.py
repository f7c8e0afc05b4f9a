"""Atomic writes: a reader sees the old file or the new one, never half of one."""

import os

import pytest
import tensorflow as tf

from cutpaste_tf import files


def test_write_json_round_trip_and_no_temporaries(tmp_path):
    path = str(tmp_path / "sub" / "results.json")
    files.write_json(path, {"auroc": 0.5, "n": [1, 2]})
    assert files.read_json(path) == {"auroc": 0.5, "n": [1, 2]}
    files.write_json(path, {"auroc": 0.75})
    assert files.read_json(path) == {"auroc": 0.75}
    assert os.listdir(tmp_path / "sub") == ["results.json"]


def test_failed_write_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = str(tmp_path / "results.json")
    files.write_json(path, {"version": 1})

    def broken_rename(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tf.io.gfile, "rename", broken_rename)
    with pytest.raises(OSError, match="disk full"):
        files.write_json(path, {"version": 2})
    monkeypatch.undo()
    assert files.read_json(path) == {"version": 1}
    assert os.listdir(tmp_path) == ["results.json"]  # the temporary file was cleaned up


def test_replace_dir(tmp_path):
    final, tmp = tmp_path / "1", tmp_path / ".tmp"
    final.mkdir()
    (final / "old.txt").write_text("old")
    tmp.mkdir()
    (tmp / "new.txt").write_text("new")
    files.replace_dir(str(tmp), str(final))
    assert sorted(os.listdir(tmp_path)) == ["1"]
    assert os.listdir(final) == ["new.txt"]
