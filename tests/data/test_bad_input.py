"""The bad-input suite: one test per kind of bad input, each asserting the message it gets.

Bad files are made in ``tmp_path`` from copies of a few testdata images (MVTec layout). Odd but
valid inputs (16-bit, palette, RGBA, grey PNGs, JPEG, BMP) are accepted and converted; their
tests are at the end.
"""

import dataclasses
import json
import os
import pathlib
import shutil
import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest
import tensorflow as tf
from helpers import copy_washer  # a small copy of testdata's washer

from cutpaste_tf import __version__, data, density, rundir
from cutpaste_tf.config import DensityConfig, ModelConfig, RunConfig
from cutpaste_tf.data import DataError, validate
from cutpaste_tf.evaluation import evaluate

ROOT = pathlib.Path(__file__).resolve().parents[2]
WASHER = ROOT / "testdata" / "washer"  # 112 x 144 RGB images, 0/255 masks


@pytest.fixture
def root(tmp_path):
    """A small copy of testdata's washer: 3 train, 2 good test, 2 scratch test with masks."""
    return copy_washer(tmp_path, scratch=2)


def _validate(root, **kwargs):
    return validate.validate_category(data.index_mvtec(str(root), "washer"), **kwargs)


def _problem(root, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        _validate(root, **kwargs)
    return str(info.value)


def _png(path, array):
    """Writes ``array`` (RGB / RGBA / grey, 8 or 16 bit) as a PNG with cv2."""
    if array.ndim == 3 and array.shape[2] == 3:
        array = array[..., ::-1]
    elif array.ndim == 3 and array.shape[2] == 4:
        array = array[..., [2, 1, 0, 3]]
    assert cv2.imwrite(str(path), array)


def test_the_clean_copy_passes(root):
    report = _validate(root, image_size=(64, 64))
    assert report.num_images == 7 and report.num_masks == 2
    assert report.warnings() == [] and report.conversions == {}
    assert "checked 7 images and 2 masks" in report.summary()


# ------------------------------------------------------------------------------------------
# Folders and categories.


def test_missing_data_dir(tmp_path):
    with pytest.raises(DataError, match="data directory '.*nope' does not exist"):
        data.index_mvtec(str(tmp_path / "nope"), "washer")


def test_unknown_category(root):
    with pytest.raises(DataError, match="category 'bottle' not found .*; available: washer"):
        data.index_mvtec(str(root), "bottle")


def test_missing_training_folder(root):
    shutil.rmtree(root / "washer" / "train" / "good")
    # Without train/good the folder is not a category at all.
    with pytest.raises(DataError, match="'washer' not found"):
        data.index_mvtec(str(root), "washer")


def test_empty_training_folder(root):
    for f in (root / "washer" / "train" / "good").iterdir():
        f.unlink()
    (root / "washer" / "train" / "good" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"training image folder '.*train/good' holds no images "
                                        r"\(looked for .png.*\); it holds only 1 other file"):
        data.index_mvtec(str(root), "washer")


def test_missing_test_folder(root):
    shutil.rmtree(root / "washer" / "test")
    with pytest.raises(DataError, match="test directory '.*washer/test' does not exist"):
        data.index_mvtec(str(root), "washer")


def test_empty_defect_folder(root):
    (root / "washer" / "test" / "crack").mkdir()
    with pytest.raises(DataError, match="defective test image folder '.*test/crack' holds no images"):
        data.index_mvtec(str(root), "washer")


def test_empty_folder_in_folder_layout(tmp_path, root):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="defective test image folder '.*empty' holds no images"):
        data.index_folders("w", str(root / "washer/train/good"), str(root / "washer/test/good"),
                           [str(tmp_path / "empty")])


# ------------------------------------------------------------------------------------------
# The same image in two sets (a leak between training and test).


def _folders(root, test_good: str, **kwargs):
    """The copy of washer as a folder dataset with ``test_good`` as the normal test folder."""
    washer = root / "washer"
    indexed = data.index_folders("w", str(washer / "train/good"), test_good,
                                 [str(washer / "test/scratch")])
    return validate.validate_category(indexed, **kwargs)


@pytest.mark.parametrize("decode", [True, False])
def test_the_training_folder_as_test_folder_is_refused_naming_the_files(root, decode):
    train = root / "washer" / "train" / "good"
    for test_good in (str(train), f"{train}/../good"):  # also as another spelling of the path
        with pytest.raises(DataError) as info:
            _folders(root, test_good, decode=decode)
        message = str(info.value)
        assert "3 test image(s) are also training images" in message, message
        assert "train/good/000.png" in message and "train/good/002.png" in message
        assert "give the test set other images" in message


def test_a_symlinked_folder_is_the_same_folder(root, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(root / "washer" / "train" / "good", target_is_directory=True)
    with pytest.raises(DataError, match=rf"3 test image\(s\) are also training images.*"
                                        rf"{link}/000.png \(= .*train/good/000.png\)"):
        _folders(root, str(link))


def test_a_training_image_copied_under_another_name_is_found_by_its_bytes(root):
    good = root / "washer" / "test" / "good"
    shutil.copy(root / "washer" / "train" / "good" / "001.png", good / "renamed.png")
    message = _problem(root)
    assert ("1 test image(s) are also training images, as the same file or the same bytes: "
            f"{good / 'renamed.png'} (the bytes of "
            f"{root / 'washer' / 'train' / 'good' / '001.png'})") in message, message
    with pytest.raises(DataError, match="renamed.png"):  # headers only: hashed all the same
        _validate(root, decode=False)


def test_many_overlaps_are_counted_and_the_first_named(root):
    train = root / "washer" / "train" / "good"
    for i in range(3, 9):
        shutil.copy(train / "000.png", train / f"00{i}.png")
    report = _validate(root)  # copies within the training set: a warning, not an error
    [warning] = report.warnings()
    assert warning.startswith("[washer] 6 training image(s) have the same bytes as another")
    assert f"{train / '003.png'} = {train / '000.png'}" in warning and "and 1 more" in warning
    with pytest.raises(DataError) as info:
        _folders(root, str(train))
    assert "9 test image(s) are also training images" in str(info.value)
    assert str(info.value).count("train/good/") == 5 and "and 4 more" in str(info.value)


def test_validation_images_may_not_be_test_or_training_images(root, tmp_path):
    indexed = data.index_mvtec(str(root), "washer")
    clean = dataclasses.replace(indexed, val_files=(str(WASHER / "train/good/010.png"),))
    assert validate.validate_category(clean).num_images == 8
    leaky = dataclasses.replace(indexed, val_files=(indexed.train_files[0],
                                                    indexed.test_files[0]))
    message = str(pytest.raises(DataError, validate.validate_category, leaky).value)
    assert "1 validation image(s) are also training images" in message
    assert "1 test image(s) are also validation images" in message


# ------------------------------------------------------------------------------------------
# Files that are not images, or not whole ones.


def test_non_image_files_are_skipped_with_a_counted_warning(root):
    for name in (".DS_Store", "readme.txt", "labels.csv"):
        (root / "washer" / "train" / "good" / name).write_text("not an image")
    (root / "washer" / "ground_truth" / "scratch" / "Thumbs.db").write_bytes(b"\0" * 10)
    indexed = data.index_mvtec(str(root), "washer")
    assert len(indexed.train_files) == 3  # the pipeline never sees them
    report = validate.validate_category(indexed)
    [warning] = report.warnings()
    assert warning.startswith("[washer] skipped 4 file(s) that are not images by their name: ")
    assert ".DS_Store" in warning and "and 1 more" in warning


def test_text_file_with_an_image_name(root):
    path = root / "washer" / "train" / "good" / "003.png"
    path.write_text("hello, I am not a PNG")
    assert f"{path}: not a PNG, JPEG or BMP image (it starts with b'hello, I')" in _problem(root)


def test_empty_image_file(root):
    path = root / "washer" / "train" / "good" / "003.png"
    path.write_bytes(b"")
    assert f"{path}: empty file, not an image" in _problem(root)


def test_truncated_png(root):
    path = root / "washer" / "train" / "good" / "001.png"
    contents = path.read_bytes()
    path.write_bytes(contents[: len(contents) // 2])
    message = _problem(root)
    assert "1 problem(s) in the data of category 'washer', found before training" in message
    assert f"{path}: truncated or corrupt PNG image" in message


def test_corrupt_png_data(root):
    path = root / "washer" / "test" / "good" / "000.png"
    contents = bytearray(path.read_bytes())
    contents[100:400] = bytes(300)  # zero out part of the compressed data
    path.write_bytes(bytes(contents))
    assert f"{path}: truncated or corrupt PNG image" in _problem(root)


def test_corrupt_png_header(root):
    path = root / "washer" / "test" / "good" / "000.png"
    contents = bytearray(path.read_bytes())
    contents[12:16] = b"XXXX"  # the IHDR chunk type
    path.write_bytes(bytes(contents))
    assert f"{path}: truncated or corrupt PNG header" in _problem(root)


def test_truncated_jpeg(root):
    image = cv2.imread(str(root / "washer" / "train" / "good" / "000.png"))
    ok, encoded = cv2.imencode(".jpg", image)
    path = root / "washer" / "train" / "good" / "003.jpg"
    path.write_bytes(encoded.tobytes()[: encoded.size // 2])
    assert f"{path}: truncated or corrupt JPEG image" in _problem(root)


def test_headers_only_mode_does_not_decode(root):
    path = root / "washer" / "train" / "good" / "001.png"
    contents = path.read_bytes()
    path.write_bytes(contents[: len(contents) // 2])
    _validate(root, decode=False)  # the header is intact: passes without decoding
    assert "truncated or corrupt" in _problem(root, decode=True)


def test_every_problem_is_listed_at_once(root):
    for name in ("000.png", "001.png", "002.png"):
        (root / "washer" / "train" / "good" / name).write_text("junk")
    message = _problem(root)
    assert message.count("not a PNG, JPEG or BMP image") == 3 and "3 problem(s)" in message


def test_long_lists_are_cut(root):
    good = root / "washer" / "train" / "good"
    for i in range(30):
        (good / f"{100 + i}.png").write_text("junk")
    message = _problem(root)
    assert "30 problem(s)" in message and "... and 10 more" in message


# ------------------------------------------------------------------------------------------
# Sizes.


def test_image_below_the_minimum_size(root):
    path = root / "washer" / "train" / "good" / "003.png"
    _png(path, np.zeros((20, 40, 3), np.uint8))
    assert (f"{path}: 40x20 is smaller than the minimum of 32 px per side (min_image_size)"
            in _problem(root))
    assert "smaller than the minimum of 16" not in _problem(root, min_size=50)
    _validate(root, min_size=16)  # the minimum is a parameter


def test_images_smaller_than_the_training_size_are_counted(root):
    report = _validate(root, image_size=(128, 128))  # washer is 112 x 144
    assert report.upscaled == 7
    assert report.warnings() == ["[washer] 7 image(s) are smaller than the training size and "
                                 "will be upscaled"]


def test_image_over_the_pixel_limit(root):
    path = root / "washer" / "train" / "good" / "000.png"
    assert (f"{path}: 144x112 is 16,128 pixels, over the limit of 10,000 (max_image_pixels); "
            "not decoded") in _problem(root, max_pixels=10_000)


def test_decompression_bomb_is_refused_from_its_header_alone(root, monkeypatch):
    # A PNG whose header claims 100000 x 100000 grey pixels (10 GB decoded), with a few bytes of
    # image data: decoding would try to allocate it all. The header check refuses it first:
    # the other images are decoded, the bomb never is.
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(bytes(100_001) * 10)) + chunk(b"IEND", b""))
    path = root / "washer" / "train" / "good" / "003.png"
    path.write_bytes(bomb)
    decoded, decode_image = [], tf.io.decode_image
    monkeypatch.setattr(tf.io, "decode_image",
                        lambda contents, *a, **k: decoded.append(bytes(contents.numpy()))
                        or decode_image(contents, *a, **k))
    message = _problem(root)
    assert f"{path}: 100000x100000 is 10,000,000,000 pixels, over the limit of 50,000,000" in message
    assert decoded and bomb not in decoded


# ------------------------------------------------------------------------------------------
# Masks.


def test_missing_mask_when_other_masks_exist(root):
    mask = root / "washer" / "ground_truth" / "scratch" / "001_mask.png"
    mask.unlink()
    image = root / "washer" / "test" / "scratch" / "001.png"
    assert (f"{image}: defective test image without a mask, while 1 of the category's 2 "
            f"defective images have one (expected {mask})") in _problem(root)


def test_no_masks_at_all_is_fine(root):
    shutil.rmtree(root / "washer" / "ground_truth")
    assert _validate(root).num_masks == 0


def test_mask_of_another_aspect_ratio_names_both_files(root):
    mask = root / "washer" / "ground_truth" / "scratch" / "000_mask.png"
    _png(mask, np.zeros((56, 56), np.uint8))
    image = root / "washer" / "test" / "scratch" / "000.png"
    assert (f"{mask}: mask is 56x56 but its image {image} is 144x112, another aspect ratio: "
            "not resized") in _problem(root)


def test_mask_of_another_size_with_the_same_aspect_ratio_is_resized_and_counted(root):
    mask = root / "washer" / "ground_truth" / "scratch" / "000_mask.png"
    values = cv2.imread(str(mask), cv2.IMREAD_UNCHANGED)
    _png(mask, values[::2, ::2])  # 72 x 56
    assert _validate(root).notes() == [
        "[washer] 1 mask resized to its image's size (nearest neighbour)"]


def test_smoothed_and_zero_one_masks_are_binarised_and_counted(root):
    # The rule changed on purpose: masks are no longer refused unless exactly 0/255.
    masks = root / "washer" / "ground_truth" / "scratch"
    smooth = np.zeros((112, 144), np.uint8)
    smooth[10:20, 10:20], smooth[30:40, 30:40] = 128, 255
    _png(masks / "000_mask.png", smooth)
    zero_one = np.zeros((112, 144), np.uint8)
    zero_one[10:20, 10:20] = 1
    _png(masks / "001_mask.png", zero_one)
    report = _validate(root)
    assert report.notes() == [
        "[washer] 1 mask binarised at 128 of 255: values between 0 and 255 (smoothed or "
        "compressed edges)",
        "[washer] 1 mask read as 0/1 (1 = defect)"]
    assert report.warnings() == []


def test_corrupt_mask(root):
    mask = root / "washer" / "ground_truth" / "scratch" / "000_mask.png"
    contents = mask.read_bytes()
    mask.write_bytes(contents[: len(contents) // 2])
    assert f"{mask}: truncated or corrupt PNG mask" in _problem(root)


def test_mask_that_is_not_an_image(root):
    mask = root / "washer" / "ground_truth" / "scratch" / "000_mask.png"
    mask.write_text("not a mask")
    assert f"{mask}: not a PNG, JPEG or BMP image" in _problem(root)


def test_sixteen_bit_binary_mask_is_accepted(root):
    mask = root / "washer" / "ground_truth" / "scratch" / "000_mask.png"
    values = cv2.imread(str(mask), cv2.IMREAD_UNCHANGED).astype(np.uint16) * 257
    _png(mask, values)
    assert _validate(root).notes() == []  # 0/65535: nothing to convert


# ------------------------------------------------------------------------------------------
# Numbers: features and densities.


def _category(n=5):
    files = tuple(f"train/{i:03d}.png" for i in range(n))
    return data.CategoryData("washer", "object", False, files, ("t0.png", "t1.png"), (0, 1),
                             ("good", "cut"), (None, None))


def test_nan_features_name_the_category_the_stage_and_the_images():
    features = np.random.default_rng(0).normal(size=(5, 8))
    features[3, 2] = np.nan
    with pytest.raises(evaluate.EvaluationError,
                       match=r"category 'washer', density fit on the training images: the "
                             r"features of 1 of 5 images are NaN or Inf, e\.g\. train/003\.png"):
        evaluate._check_finite(features, _category().train_files, "washer",
                               "density fit on the training images")


def test_nan_embeddings_from_a_broken_model_stop_the_density_fit(monkeypatch):
    features = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    features[1] = np.inf
    monkeypatch.setattr(evaluate, "embed", lambda *args, **kwargs: features)
    with pytest.raises(evaluate.EvaluationError, match=r"'washer', density fit.*train/001\.png"):
        evaluate.fit_density(None, _category(), (32, 32), DensityConfig())
    with pytest.raises(evaluate.EvaluationError,
                       match=r"'washer', scoring the test images.*train/001\.png"):
        evaluate.score_images(None, None, _category().train_files, (32, 32), "pooled",
                              category="washer")


def test_identical_features_are_a_clear_error(monkeypatch):
    monkeypatch.setattr(evaluate, "embed", lambda *a, **k: np.full((5, 8), 0.3, np.float32))
    with pytest.raises(evaluate.EvaluationError,
                       match="'washer', density fit.*features of all 5 training images are "
                             r"identical \(zero variance\)"):
        evaluate.fit_density(None, _category(), (32, 32), DensityConfig())


def test_non_finite_scores_name_the_images():
    with pytest.raises(evaluate.EvaluationError, match=r"'washer', AUROC: 1 test images.*t1\.png"):
        evaluate.evaluate(np.array([0.1, np.inf]), _category())


# ------------------------------------------------------------------------------------------
# Model dirs and artifacts from elsewhere.


def test_model_dir_from_another_package_version(tmp_path):
    config = RunConfig()
    rundir.check_model_dir(str(tmp_path), config)
    stored = json.loads((tmp_path / "config.json").read_text())
    assert stored[rundir.VERSION_KEY] == __version__
    stored[rundir.VERSION_KEY] = "0.0.3"
    (tmp_path / "config.json").write_text(json.dumps(stored))
    with pytest.raises(ValueError, match=rf"was written by cutpaste_tf 0\.0\.3, this is {__version__}"):
        rundir.check_model_dir(str(tmp_path), config)
    del stored[rundir.VERSION_KEY]
    (tmp_path / "config.json").write_text(json.dumps(stored))
    with pytest.raises(ValueError, match="does not record the cutpaste_tf version"):
        rundir.check_model_dir(str(tmp_path), config)
    rundir.check_model_dir(str(tmp_path), config, overwrite=True)  # --overwrite starts again


def test_model_dir_with_a_corrupt_config(tmp_path):
    (tmp_path / "config.json").write_text('{"model": ')
    with pytest.raises(ValueError, match=r"config.json is not valid JSON .*overwrite=True"):
        rundir.check_model_dir(str(tmp_path), RunConfig())


def test_model_dir_with_another_backbone(tmp_path):
    rundir.check_model_dir(str(tmp_path), RunConfig())
    stored = json.loads((tmp_path / "config.json").read_text())
    stored["model"]["backbone"] = "resnet50"
    (tmp_path / "config.json").write_text(json.dumps(stored))
    with pytest.raises(ValueError, match="holds a 'resnet50' model, this run asks for backbone "
                                         "'resnet18'"):
        rundir.check_model_dir(str(tmp_path), RunConfig(model=ModelConfig()))


def test_a_directory_that_is_not_a_model_dir_is_never_used_or_deleted(tmp_path):
    (tmp_path / "thesis.tex").write_text("years of work")
    for overwrite in (False, True):
        with pytest.raises(ValueError, match="exists, is not empty and holds no config.json"):
            rundir.check_model_dir(str(tmp_path), RunConfig(), overwrite=overwrite)
    assert (tmp_path / "thesis.tex").read_text() == "years of work"


def _gde():
    return density.fit_density("gde", np.random.default_rng(0).normal(size=(20, 4)))


def test_density_file_from_another_version_or_backbone(tmp_path):
    path = str(tmp_path / "density.npz")
    density.save_density(_gde(), path, metadata={"backbone": "resnet18", "feature": "pooled"})
    density.load_density(path, expect={"backbone": "resnet18", "feature": "pooled"})
    with pytest.raises(ValueError, match="density.npz was fitted with backbone 'resnet18', "
                                         "expected 'resnet50'"):
        density.load_density(path, expect={"backbone": "resnet50"})
    with np.load(path, allow_pickle=False) as npz:
        arrays = dict(npz)
    arrays[density.VERSION_ENTRY] = np.array("9.9.0")
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=rf"density.npz was written by cutpaste_tf 9\.9\.0, this is "
                                         rf"{__version__}; fit the density again"):
        density.load_density(path)


def test_density_file_with_pickled_objects_is_never_unpickled(tmp_path):
    path = str(tmp_path / "evil.npz")
    np.savez(path, kind=np.array("gde"), normalize=np.array(True),
             mean=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="evil.npz holds pickled .object. data, which is never "
                                         "loaded"):
        density.load_density(path)


# ------------------------------------------------------------------------------------------
# The launcher: bad data stops the run before any training step, naming the file.


def test_launcher_names_a_corrupt_png_and_exits_before_training(tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(ROOT / "testdata", data_dir, ignore=shutil.ignore_patterns("*.py", "*.md"))
    bad = data_dir / "washer" / "train" / "good" / "017.png"
    contents = bad.read_bytes()
    bad.write_bytes(contents[: len(contents) // 3])
    model_dir = tmp_path / "model"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [sys.executable, "-m", "launch.train", "--flagfile=configs/quickstart.flags",
         f"--data_dir={data_dir}", f"--model_dir={model_dir}", "--progress=false"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "error: 1 problem(s) in the data of category 'washer'" in result.stderr
    assert f"{bad}: truncated or corrupt PNG image" in result.stderr
    assert "Traceback" not in result.stderr
    assert not model_dir.exists()  # nothing written, no model built, no step taken


# ------------------------------------------------------------------------------------------
# Odd but valid images: accepted and converted to 8-bit RGB correctly.


def _decode(path):
    return data.decode(tf.io.read_file(str(path))).numpy()


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path, root):
    values = np.array([0, 255, 257, 1000, 32896, 40000, 65535], np.uint16)
    grid = np.tile(np.repeat(values, 5)[None, :, None], (40, 1, 3))  # 40 x 35, 5 columns each
    grid[..., 1] = values[::-1].repeat(5)[None, :]
    path = tmp_path / "rgb16.png"
    _png(path, grid)
    assert validate.read_header(str(path)).bit_depth == 16
    got = _decode(path)
    assert got.dtype == np.uint8 and got.shape == (40, 35, 3)
    np.testing.assert_allclose(got.astype(float), grid / 257.0, atol=1.0)  # 65535 -> 255
    assert got[0, -1, 0] == 255 and got[0, 20, 0] == 128 and got[0, 0, 0] == 0
    grey = tmp_path / "grey16.png"
    _png(grey, grid[..., 0])
    np.testing.assert_allclose(_decode(grey)[..., 2].astype(float), grid[..., 0] / 257.0, atol=1.0)

    shutil.copy(path, root / "washer" / "train" / "good" / "003.png")
    assert _validate(root).conversions == {"16-bit": 1}


def test_palette_rgba_grey_and_grey_alpha_pngs_are_converted(tmp_path, root):
    from PIL import Image  # Pillow writes palette PNGs; cv2 cannot

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (40, 48, 3), np.uint8)
    palette = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.save(tmp_path / "palette.png")
    np.testing.assert_array_equal(_decode(tmp_path / "palette.png"),
                                  np.asarray(palette.convert("RGB")))

    rgba = np.concatenate([rgb, rng.integers(0, 256, (40, 48, 1), np.uint8)], axis=-1)
    _png(tmp_path / "rgba.png", rgba)
    np.testing.assert_array_equal(_decode(tmp_path / "rgba.png"), rgb)  # alpha dropped

    grey = rgb[..., 0]
    _png(tmp_path / "grey.png", grey)
    np.testing.assert_array_equal(_decode(tmp_path / "grey.png"), np.stack([grey] * 3, -1))
    Image.fromarray(np.stack([grey, grey], -1), "LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(_decode(tmp_path / "la.png"), np.stack([grey] * 3, -1))

    kinds = {"palette.png": "palette", "rgba.png": "RGBA", "grey.png": "grey", "la.png": "grey+alpha"}
    for i, (name, kind) in enumerate(kinds.items()):
        assert validate.read_header(str(tmp_path / name)).color == kind
        shutil.copy(tmp_path / name, root / "washer" / "train" / "good" / f"1{i:02d}.png")
    assert _validate(root).conversions == {"palette": 1, "RGBA": 1, "grey": 1, "grey+alpha": 1}


def test_jpeg_and_bmp_headers_and_decoding(tmp_path, root):
    image = cv2.imread(str(WASHER / "train" / "good" / "000.png"))
    for ext in (".jpg", ".bmp"):
        path = root / "washer" / "train" / "good" / f"003{ext}"
        assert cv2.imwrite(str(path), image)
        header = validate.read_header(str(path))
        assert (header.width, header.height) == (144, 112)
        assert header.format == {".jpg": "JPEG", ".bmp": "BMP"}[ext]
        assert _decode(path).shape == (112, 144, 3)
    assert _validate(root).num_images == 9
