"""cutpaste_tf/pipeline/reexport.py: which version a re-export writes (which categories it
takes: tests/pipeline/test_rundir.py; a full re-export: tests/pipeline/test_patch.py and
tests/launch/test_launch.py)."""

from cutpaste_tf.pipeline import reexport


def test_the_next_version_follows_the_newest_complete_export(tmp_path):
    assert reexport.next_version(str(tmp_path), "washer") == 1
    for version in (1, 4):
        (tmp_path / "washer" / str(version)).mkdir(parents=True)
        (tmp_path / "washer" / str(version) / "saved_model.pb").write_bytes(b"")
    (tmp_path / "washer" / "7").mkdir()  # incomplete: no saved_model.pb
    assert reexport.next_version(str(tmp_path), "washer") == 5
