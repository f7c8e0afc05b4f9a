"""The public datasets' own layouts (cutpaste_tf.data.layouts) on tiny fixtures in their exact
published layouts (testdata/layouts/generate.py), their wrong-layout errors, and one
launch.train + launch.predict run per layout."""

import csv
import importlib.util
import json
import os
import pathlib
import shutil
import sys

import cv2
import numpy as np
import pytest

from cutpaste_tf import data
from cutpaste_tf.data import DataError, layouts

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY = ["--flagfile=configs/quickstart.flags", "--image_size=32", "--batch_size=6", "--epochs=1",
        "--steps_per_epoch=3", "--checkpoint_every=3", "--log_every=1", "--head_widths=16",
        "--progress=false", "--val_fraction=0.25", "--decode_check=false"]


def _generator():
    spec = importlib.util.spec_from_file_location(
        "layouts_generate", ROOT / "testdata" / "layouts" / "generate.py")
    mod = importlib.util.module_from_spec(spec)
    old, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ in testdata/
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.dont_write_bytecode = old
    return mod


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    return {k: str(v) for k, v in _generator().generate(tmp_path_factory.mktemp("layouts")).items()}


def _copy(roots, name, tmp_path):
    dst = tmp_path / name
    shutil.copytree(roots[name], dst)
    return dst


# ------------------------------------------------------------------------------- indexers
def test_visa_reads_the_split_csv(roots):
    root = roots["visa"]
    assert data.layout_categories("visa", root) == ["candle", "pcb1"]
    candle = data.index_layout("visa", root, "candle")
    assert (candle.kind, candle.aligned) == ("object", False)
    assert [os.path.relpath(p, root) for p in candle.train_files] == [
        f"candle/Data/Images/Normal/{i:04d}.JPG" for i in range(5)]
    assert candle.test_labels == (0, 0, 1, 1)
    assert candle.test_defects == ("good", "good", "anomaly", "anomaly")
    assert candle.defect_types == ["anomaly"]
    assert candle.mask_files[:2] == (None, None)
    assert [os.path.relpath(p, root) for p in candle.mask_files[2:]] == [
        "candle/Data/Masks/Anomaly/000.png", "candle/Data/Masks/Anomaly/001.png"]
    assert candle.val_files == ()
    # VisA's masks are not 0/255: their defect pixels are small integers.
    raw = cv2.imread(candle.mask_files[3], cv2.IMREAD_UNCHANGED)
    assert np.unique(raw).tolist() == [0, 2]
    from cutpaste_tf.data import masks  # read as a label mask: its non-zero pixels

    np.testing.assert_array_equal(masks.read_mask(candle.mask_files[3]), raw != 0)


def test_btad_products_with_bmp_and_png(roots):
    root = roots["btad"]
    assert data.layout_categories("btad", root) == ["01", "02", "03"]
    for product, ext, mask_ext in [("01", ".bmp", ".png"), ("03", ".bmp", ".bmp")]:
        got = data.index_layout("btad", root, product)
        assert len(got.train_files) == 5 and all(p.endswith(ext) for p in got.train_files)
        assert got.test_labels == (0, 0, 1, 1)
        assert got.test_defects == ("good", "good", "ko", "ko")
        assert [os.path.basename(m) for m in got.mask_files[2:]] == [
            f"0000{mask_ext}", f"0001{mask_ext}"]
        assert all(f"{os.sep}ground_truth{os.sep}ko{os.sep}" in m for m in got.mask_files[2:])


def test_mvtec_loco_validation_images_and_merged_masks(roots):
    root = roots["mvtec_loco"]
    assert data.layout_categories("mvtec_loco", root) == ["breakfast_box", "juice_bottle"]
    box = data.index_layout("mvtec_loco", root, "breakfast_box", kind="object")
    assert len(box.train_files) == 5
    assert [os.path.relpath(p, root) for p in box.val_files] == [
        f"breakfast_box/validation/good/{i:03d}.png" for i in range(3)]
    assert not set(box.val_files) & set(box.train_files + box.test_files)
    assert box.defect_types == ["logical_anomalies", "structural_anomalies"]
    assert box.test_labels == (0, 0, 1, 1, 1, 1)
    masks = box.mask_files
    assert masks[:2] == (None, None)
    # The first image of each type has two mask files (a tuple), the second one (a path).
    assert isinstance(masks[2], tuple) and isinstance(masks[4], tuple)
    assert [os.path.relpath(p, root) for p in masks[2]] == [
        "breakfast_box/ground_truth/logical_anomalies/000/000.png",
        "breakfast_box/ground_truth/logical_anomalies/000/001.png"]
    assert os.path.relpath(masks[3], root) == (
        "breakfast_box/ground_truth/logical_anomalies/001/000.png")
    assert os.path.relpath(masks[5], root) == (
        "breakfast_box/ground_truth/structural_anomalies/001/000.png")


def test_mvtec_loco_validation_images_are_validated_and_masks_merged(roots, tmp_path):
    from cutpaste_tf.data import masks, validate

    root = _copy(roots, "mvtec_loco", tmp_path)
    box = data.index_layout("mvtec_loco", str(root), "breakfast_box")
    merged = masks.read_mask(box.mask_files[2])
    parts = [masks.read_mask(p) for p in box.mask_files[2]]
    assert parts[0].any() and parts[1].any() and (parts[0] != parts[1]).any()
    np.testing.assert_array_equal(merged, parts[0] | parts[1])
    validate.validate_category(box)
    (root / "breakfast_box" / "validation" / "good" / "001.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"validation/good/001.png"):
        validate.validate_category(box)


def test_kolektorsdd2_labels_from_the_masks(roots):
    root = roots["kolektorsdd2"]
    assert data.layout_categories("kolektorsdd2", root) == ["kolektorsdd2"]
    got = data.index_layout("kolektorsdd2", root, "kolektorsdd2")
    # 7 training images, the 2 whose masks are not empty are left out.
    names = lambda paths: [os.path.basename(p) for p in paths]  # noqa: E731
    assert names(got.train_files) == [f"{i}.png" for i in range(10000, 10005)]
    assert names(got.test_files) == [f"{i}.png" for i in range(10007, 10011)]
    assert got.test_labels == (0, 0, 1, 1)
    assert got.test_defects == ("good", "good", "defect", "defect")
    assert got.mask_files[:2] == (None, None)
    assert [os.path.basename(m) for m in got.mask_files[2:]] == ["10009_GT.png", "10010_GT.png"]
    assert sorted(os.listdir(root)) == ["test", "train"]  # nothing cached beside the data


def test_unknown_mvtec_layout_category_takes_the_given_kind(roots):
    root = roots["mpdd"]
    assert data.layout_categories("mvtec", root) == ["bracket_black"]
    assert data.index_layout("mvtec", root, "bracket_black").kind == "object"  # the default
    got = data.index_layout("mvtec", root, "bracket_black", kind="texture")
    assert (got.kind, got.aligned, got.defect_types) == ("texture", False, ["hole"])
    # A categories.json entry, or the paper's lists, still win over the given kind.
    testdata = str(ROOT / "testdata")
    assert data.index_layout("mvtec", testdata, "washer", kind="texture").kind == "object"


# ------------------------------------------------------------------------------- errors
def test_wrong_layouts_name_the_expected_layout_and_the_missing_path(roots, tmp_path):
    cases = [
        ("visa", roots["btad"], None,
         f"dataset=visa expects <root>/split_csv/1cls.csv; not found: "
         f"{os.path.join(roots['btad'], 'split_csv', '1cls.csv')}"),
        ("btad", roots["visa"], None,
         f"dataset=btad expects <root>/<product>/train/ok; no folder under {roots['visa']}"),
        ("mvtec_loco", str(tmp_path / "nope"), None,
         f"dataset=mvtec_loco expects <root>/<category>/train/good; not found: "
         f"{tmp_path / 'nope'}"),
        ("kolektorsdd2", roots["mvtec_loco"], "kolektorsdd2",
         f"dataset=kolektorsdd2 expects <root>/train with <id>.png and <id>_GT.png; not "
         f"found: {os.path.join(roots['mvtec_loco'], 'train')}"),
        ("visa", roots["visa"], "bottle",
         f"dataset=visa: category 'bottle' not found under {roots['visa']}; available: "
         "candle, pcb1"),
        ("btad", roots["btad"], "04", "category '04' not found"),
    ]
    for layout, root, category, message in cases:
        with pytest.raises(DataError) as info:
            if category is None:
                data.layout_categories(layout, root)
            else:
                data.index_layout(layout, root, category)
        assert message in str(info.value), (layout, str(info.value))


def test_mvtec_ad_is_not_mvtec_loco(tmp_path):
    # An MVTec AD category has no validation/good: the error names the LOCO folder it lacks.
    root = tmp_path / "ad"
    shutil.copytree(ROOT / "testdata" / "washer", root / "washer")
    with pytest.raises(DataError, match=r"dataset=mvtec_loco expects "
                       r"<root>/<category>/validation/good; not found: .*washer/validation/good"):
        data.index_layout("mvtec_loco", str(root), "washer")


def test_missing_kolektor_mask_and_visa_columns_are_named(roots, tmp_path):
    ksdd = _copy(roots, "kolektorsdd2", tmp_path)
    (ksdd / "test" / "10008_GT.png").unlink()
    with pytest.raises(DataError, match=r"<root>/test/<id>_GT.png beside every "
                       r"<root>/test/<id>.png; not found: .*10008_GT.png"):
        data.index_layout("kolektorsdd2", str(ksdd), "kolektorsdd2")
    visa = _copy(roots, "visa", tmp_path)
    split = visa / "split_csv" / "1cls.csv"
    rows = list(csv.reader(split.open()))
    with split.open("w", newline="") as f:
        csv.writer(f).writerows([r[:3] + r[4:] for r in rows])  # no "image" column
    with pytest.raises(DataError, match="expects the columns object,split,label,image,mask; "
                       "missing image"):
        data.index_layout("visa", str(visa), "candle")
    shutil.rmtree(visa / "candle" / "Data" / "Images" / "Normal")
    split.write_text("\n".join(",".join(r) for r in rows) + "\n")
    with pytest.raises(DataError, match=r"dataset=visa expects <root>/<image path from "
                       r"split_csv/1cls.csv>; not found: .*Normal/0000.JPG"):
        data.index_layout("visa", str(visa), "candle")


def test_unknown_layout_and_kind():
    with pytest.raises(DataError, match="unknown dataset layout 'mvtec_ad'"):
        layouts.index_layout("mvtec_ad", "x", "y")
    with pytest.raises(DataError, match="kind must be 'texture' or 'object'"):
        layouts.index_layout("visa", "x", "y", kind="textile")


# ------------------------------------------------------------------------------- launchers
def test_resolve_categories_all_and_the_kind_flag(roots, parse_flags):
    from cutpaste_tf.pipeline import inputs
    from launch import configs

    parse_flags("--dataset=mvtec_loco", f"--data_dir={roots['mvtec_loco']}", "--category=all",
                "--category_kind=texture")
    got = inputs.resolve_categories(configs.input_spec())
    assert [(c.name, c.kind) for c in got] == [("breakfast_box", "texture"),
                                               ("juice_bottle", "texture")]
    parse_flags("--dataset=btad")
    with pytest.raises(ValueError, match=r"data_dir is required \(the root of the BTAD"):
        inputs.resolve_categories(configs.input_spec())


@pytest.mark.parametrize("layout, category, images", [
    ("visa", "candle", "candle/Data/Images/Anomaly"),
    ("btad", "01", "01/test"),
    ("mvtec_loco", "breakfast_box", "breakfast_box/test"),
    ("kolektorsdd2", "kolektorsdd2", "test/*[0-9].png"),  # the images, not the _GT.png masks
])
def test_train_and_predict(roots, tmp_path, monkeypatch, capsys, run_launcher, layout, category,
                           images):
    from launch import predict as predict_launcher
    from launch import train as train_launcher

    monkeypatch.chdir(ROOT)
    from cutpaste_tf import driver
    monkeypatch.setattr(driver, "_report", lambda *args: None)  # no HTML report: faster
    model_dir = tmp_path / "model"
    assert run_launcher(train_launcher, *TINY, f"--dataset={layout}",
                        f"--data_dir={roots[layout]}", f"--category={category}",
                        f"--model_dir={model_dir}") == 0
    out = capsys.readouterr().out
    results = json.loads((model_dir / "results.json").read_text())["categories"][category]
    assert 0.0 <= results["auroc"] <= 1.0
    if layout == "mvtec_loco":  # the validation images set the threshold; no split of train
        assert ("[breakfast_box] the dataset's 3 normal validation images set the decision "
                "threshold; --val_fraction is not applied") in out
        assert (results["num_validation"], results["num_train"]) == (3, 5)
        assert set(results["auroc_per_defect"]) == {"logical_anomalies", "structural_anomalies"}
        table = (model_dir / "results.md").read_text()
        assert "| breakfast box | logical anomalies |" in table
        assert "| breakfast box | structural anomalies |" in table
        record = json.loads((model_dir / category / "threshold.json").read_text())
        assert all("/validation/good/" in p for p in record["normal_files"])
    else:
        assert (results["num_validation"], results["num_train"]) == (1, 4)
    prediction_dir = tmp_path / "predictions"
    assert run_launcher(predict_launcher, f"--model={model_dir}", f"--category={category}",
                        f"--images={os.path.join(roots[layout], images)}",
                        f"--output_dir={prediction_dir}", "--noheatmaps",
                        "--progress=false") == 0
    report = json.loads((prediction_dir / "predictions.json").read_text())
    scored = [r["path"] for r in report["predictions"]]
    assert len(scored) == {"visa": 2, "btad": 4, "mvtec_loco": 6, "kolektorsdd2": 4}[layout]
    assert not any(p.endswith("_GT.png") for p in scored)
    assert all(np.isfinite(r["score"]) for r in report["predictions"])
