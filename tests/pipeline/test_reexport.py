"""cutpaste_tf/pipeline/reexport.py: which categories a re-export takes, and which version
(a full re-export: tests/pipeline/test_patch.py and tests/launch/test_launch.py)."""

import pytest

from cutpaste_tf.pipeline import reexport, rundir


def test_the_requested_categories_must_be_trained(tmp_path):
    for name, density in (("washer", rundir.DENSITY_FILE), ("fabric", rundir.DENSITY_FILE),
                          ("grid", rundir.DENSE_DENSITY_FILE)):
        (tmp_path / name).mkdir()
        (tmp_path / name / density).write_bytes(b"")
    (tmp_path / "bottle").mkdir()  # not trained: no density
    model_dir = str(tmp_path)
    assert reexport.trained(model_dir, ["all"], rundir.DENSITY_FILE) == ["fabric", "washer"]
    assert reexport.trained(model_dir, [], rundir.DENSE_DENSITY_FILE) == ["grid"]
    assert reexport.trained(model_dir, ["washer"], rundir.DENSITY_FILE) == ["washer"]
    with pytest.raises(ValueError, match=r"no trained model for bottle in model_dir=.* "
                                         r"\(trained: fabric, washer\)"):
        reexport.trained(model_dir, ["washer", "bottle"], rundir.DENSITY_FILE)
    with pytest.raises(ValueError, match=r"holds no trained category \(no <category>/"
                                         r"dense_density.npz\)"):
        reexport.trained(str(tmp_path / "bottle"), ["all"], rundir.DENSE_DENSITY_FILE)


def test_the_next_version_follows_the_newest_complete_export(tmp_path):
    assert reexport.next_version(str(tmp_path), "washer") == 1
    for version in (1, 4):
        (tmp_path / "washer" / str(version)).mkdir(parents=True)
        (tmp_path / "washer" / str(version) / "saved_model.pb").write_bytes(b"")
    (tmp_path / "washer" / "7").mkdir()  # incomplete: no saved_model.pb
    assert reexport.next_version(str(tmp_path), "washer") == 5
