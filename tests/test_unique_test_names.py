"""Test files are imported by their base name (the test folders are not packages), so two files
of one name in different folders make pytest refuse to collect the second."""

import collections
import pathlib


def test_every_test_file_has_its_own_name():
    root = pathlib.Path(__file__).parent
    names = collections.Counter(p.name for p in root.rglob("test_*.py"))
    assert [n for n, count in names.items() if count > 1] == []
