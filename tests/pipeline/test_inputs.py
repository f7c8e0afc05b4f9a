"""cutpaste_tf/pipeline/inputs.py: the categories a run trains on, from the flags that launch.train
and launch.experiment share (launch/configs.py input_spec)."""

import dataclasses
import json
import os
import pathlib
import re
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


def _split_spec(train_dir, **kwargs) -> inputs.InputSpec:
    return inputs.InputSpec(dataset="folder", categories=("widget",), train_dir=str(train_dir),
                            test_defect_dirs=(f"{TESTDATA}/washer/test/stain",), **kwargs)


def test_a_folder_without_test_normals_holds_a_stated_recorded_split_out(tmp_path, capsys):
    good = tmp_path / "good"
    shutil.copytree(f"{TESTDATA}/washer/train/good", good)
    spec = _split_spec(good, test_good_fraction=0.25, split_seed=3)
    categories = inputs.resolve_categories(spec)
    inputs.validate_categories(categories, spec, (32, 32))  # the leak check passes
    (data,) = categories
    held = [p for p, label in zip(data.test_files, data.test_labels) if not label]
    model_dir = tmp_path / "model"
    inputs.record_test_split(categories, spec, str(model_dir))
    path = model_dir / "widget" / "test_split.json"
    assert capsys.readouterr().out.splitlines()[-1] == (
        "[widget] no --test_good_dir: 25% of 60 good images (15, seed 3) held out as test "
        f"normals; split in {path}")
    recorded = json.loads(path.read_text())
    assert recorded["test_good"] == sorted(os.path.basename(p) for p in held)
    assert len(recorded["train"]) == 45 and not set(recorded["train"]) & set(recorded["test_good"])
    assert (recorded["test_good_fraction"], recorded["split_seed"]) == (0.25, 3)
    assert not list(model_dir.glob("**/*.tmp-*"))  # written atomically
    # A resumed run: the same split, reused and said so.
    again = inputs.resolve_categories(spec)
    assert again == categories
    inputs.record_test_split(again, spec, str(model_dir))
    assert capsys.readouterr().out.strip().endswith(f"held out as test normals; split reused "
                                                    f"from {path}")
    assert json.loads(path.read_text()) == recorded
    # A changed split is refused: another seed or fraction, or images added to the folder.
    for changed, message in [({"split_seed": 4}, "split_seed=3, this run asks for split_seed=4"),
                             ({"test_good_fraction": 0.2}, "test_good_fraction=0.25, this run "
                                                           "asks for test_good_fraction=0.2")]:
        other = dataclasses.replace(spec, **changed)
        with pytest.raises(DataError, match=re.escape(message)):
            inputs.record_test_split(inputs.resolve_categories(other), other, str(model_dir))
    shutil.copy(f"{TESTDATA}/fabric/train/good/000.png", good / "new.png")
    with pytest.raises(DataError, match=r"has changed since its split was recorded: 1 image\(s\) "
                                        r"added \(new.png\), 0 removed"):
        inputs.record_test_split(inputs.resolve_categories(spec), spec, str(model_dir))
    assert json.loads(path.read_text()) == recorded


def test_a_test_good_dir_records_no_split(tmp_path):
    spec = dataclasses.replace(_split_spec(f"{TESTDATA}/washer/train/good"),
                               test_good_dir=f"{TESTDATA}/washer/test/good")
    inputs.record_test_split(inputs.resolve_categories(spec), spec, str(tmp_path))
    assert not list(tmp_path.iterdir())


def test_a_measurement_runs_on_the_first_category_asked_for_else_testdatas_washer(tmp_path,
                                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)  # the shipped testdata is found wherever the work is
    assert inputs.shipped_testdata() == TESTDATA
    washer = inputs.measured_category(inputs.InputSpec())
    assert washer.name == inputs.DEFAULT_CATEGORY == "washer"
    assert washer.train_files[0].startswith(os.path.join(TESTDATA, "washer"))
    fabric = inputs.measured_category(inputs.InputSpec(data_dir=TESTDATA,
                                                       categories=("fabric", "washer")))
    assert fabric.name == "fabric" and fabric.kind == "texture"
