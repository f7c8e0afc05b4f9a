"""cutpaste_tf/pipeline/inputs.py: the categories a run trains on, from the flags that launch.train
and launch.experiment share (launch/configs.py input_spec)."""

import dataclasses
import pathlib
import shutil

import pytest

from cutpaste_tf.config import RunConfig, ThresholdConfig
from cutpaste_tf.data import DataError
from cutpaste_tf.pipeline import inputs

TESTDATA = str(pathlib.Path(__file__).resolve().parents[2] / "testdata")


def test_the_flags_defaults_are_the_specs(parse_flags):
    from launch import configs

    parse_flags()
    assert configs.input_spec() == inputs.InputSpec()
    parse_flags("--dataset=folder", "--category=parts", "--test_defect_dirs=a,b",
                "--val_defect_dirs=c", "--nodecode_check")
    spec = configs.input_spec()
    assert spec == dataclasses.replace(inputs.InputSpec(), dataset="folder",
                                       categories=("parts",), test_defect_dirs=("a", "b"),
                                       val_defect_dirs=("c",), decode_check=False)


def test_categories_of_a_layout_and_of_folders(tmp_path):
    spec = inputs.InputSpec(data_dir=TESTDATA)
    assert [d.name for d in inputs.resolve_categories(spec)] == ["fabric", "washer"]
    washer = f"{TESTDATA}/washer"
    folder = inputs.InputSpec(dataset="folder", train_dir=f"{washer}/train/good",
                              test_good_dir=f"{washer}/test/good",
                              test_defect_dirs=(f"{washer}/test/stain",))
    (data,) = inputs.resolve_categories(folder)
    assert data.name == "custom" and len(data.train_files) == 60
    with pytest.raises(ValueError, match="dataset=folder needs train_dir"):
        inputs.resolve_categories(dataclasses.replace(folder, train_dir=None))
    with pytest.raises(ValueError, match=r"data_dir is required \(the root of the"):
        inputs.resolve_categories(inputs.InputSpec())


def _labelled_folders(tmp_path) -> tuple[str, str]:
    """A labelled validation set of fabric's images (none of them washer's)."""
    good, bad = tmp_path / "val_good", tmp_path / "val_bad"
    shutil.copytree(f"{TESTDATA}/fabric/test/good", good)
    shutil.copytree(f"{TESTDATA}/fabric/test/hole", bad)
    return str(good), str(bad)


def test_labelled_validation_and_hold_out_checks(tmp_path):
    good, bad = _labelled_folders(tmp_path)
    spec = inputs.InputSpec(data_dir=TESTDATA, categories=("washer",),
                            val_good_dir=good, val_defect_dirs=(bad,))
    categories = inputs.resolve_categories(spec)
    paths, labels = inputs.labelled_validation(categories, spec)
    assert len(paths) == len(labels) and set(labels) == {0, 1}
    assert inputs.labelled_validation(categories, inputs.InputSpec()) is None
    with pytest.raises(ValueError, match="go together"):
        inputs.labelled_validation(categories, dataclasses.replace(spec, val_defect_dirs=()))
    with pytest.raises(ValueError, match="one category's images, but 2 categories"):
        inputs.labelled_validation(categories * 2, spec)
    inputs.check_holdout(categories, RunConfig(threshold=ThresholdConfig(val_fraction=0.25)))
    with pytest.raises(ValueError, match="category 'washer': val_fraction=0.99 of 60"):
        inputs.check_holdout(categories, RunConfig(threshold=ThresholdConfig(val_fraction=0.99)))


def test_labelled_validation_may_not_hold_test_or_training_images(tmp_path):
    good, bad = _labelled_folders(tmp_path)
    spec = inputs.InputSpec(data_dir=TESTDATA, categories=("washer",), val_good_dir=good,
                            val_defect_dirs=(bad, f"{TESTDATA}/washer/test/stain"))
    categories = inputs.resolve_categories(spec)
    digests = inputs.validate_categories(categories, spec, (32, 32))
    assert len(digests) == 96  # every image of washer, hashed once by the validation
    with pytest.raises(DataError, match=r"8 labelled validation image\(s\) are also test "
                                        r"images.*washer/test/stain/000.png"):
        inputs.labelled_validation(categories, spec, digests)
    shutil.copy(f"{TESTDATA}/washer/train/good/007.png", f"{good}/copy.png")
    spec = dataclasses.replace(spec, val_defect_dirs=(bad,))
    with pytest.raises(DataError, match=r"1 labelled validation image\(s\) are also training "
                                        r"images.*copy.png \(the bytes of .*good/007.png\)"):
        inputs.labelled_validation(categories, spec, digests)
