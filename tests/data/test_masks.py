"""Masks as they come (cutpaste_tf/data/masks.py): every encoding binarises to the clean mask,
the validator counts conversions one line per kind, and pixel AUROC does not depend on how the
masks were saved."""

import dataclasses
import json
import pathlib
import shutil

import cv2
import numpy as np
import pytest
from helpers import copy_washer  # a small copy of testdata's washer

from cutpaste_tf import config as config_lib
from cutpaste_tf import data, rundir
from cutpaste_tf.config import RunConfig
from cutpaste_tf.data import DataError, masks, validate

ROOT = pathlib.Path(__file__).resolve().parents[2]
TESTDATA = ROOT / "testdata"


def _clean() -> np.ndarray:
    """A non-square bool mask: a box, an ellipse and a thin line."""
    mask = np.zeros((60, 84), np.uint8)
    mask[8:20, 10:30] = 1
    cv2.ellipse(mask, (60, 38), (14, 9), 20, 0, 360, 1, -1)
    cv2.line(mask, (5, 50), (40, 44), 1, 2)
    return mask.astype(bool)


def _write(path, array) -> None:
    """cv2.imwrite of an RGB(A) or grey array."""
    if array.ndim == 3:
        array = array[..., [2, 1, 0, 3][:array.shape[2]]]
    assert cv2.imwrite(str(path), array)


def _pil(path, array, mode, palette=None) -> None:
    """Pillow writes what cv2 cannot: palette, 1-bit and grey+alpha files."""
    image_lib = pytest.importorskip("PIL.Image")
    if mode == "P":
        image = image_lib.frombytes("P", array.shape[::-1], array.astype(np.uint8).tobytes())
        image.putpalette(palette)
    else:
        image = image_lib.fromarray(array.astype(bool) if mode == "1" else array)
        assert image.mode == mode
    image.save(path)


def _blurred(m):
    return np.round(cv2.GaussianBlur(m * 255.0, (0, 0), 1.5)).astype(np.uint8)


def _colour(m, rgb):
    return (m[..., None] * np.array(rgb)).astype(np.uint8)


# name -> (file name, writer, exact): every one of these must read back as the clean mask.
ENCODINGS = {
    "0/255 png": ("m.png", lambda p, m: _write(p, m * 255), True),
    "0/1 png": ("m.png", lambda p, m: _write(p, m * 1), True),
    "labels png": ("m.png", lambda p, m: _write(p, m * 3), True),  # 0 and a class number
    "16-bit png": ("m.png", lambda p, m: _write(p, m.astype(np.uint16) * 65535), True),
    "8-bit values in 16-bit png": ("m.png", lambda p, m: _write(p, m.astype(np.uint16) * 255),
                                   True),
    "smoothed png": ("m.png", lambda p, m: _write(p, _blurred(m)), False),
    "smoothed 16-bit png": ("m.png", lambda p, m: _write(p, _blurred(m).astype(np.uint16) * 257),
                            False),
    "jpeg": ("m.jpg", lambda p, m: cv2.imwrite(str(p), m * 255, [cv2.IMWRITE_JPEG_QUALITY, 75]),
             False),
    "colour jpeg": ("m.jpg", lambda p, m: _write(p, _colour(m, (255, 40, 0))), False),
    "RGB png": ("m.png", lambda p, m: _write(p, _colour(m, (200, 0, 30))), True),
    "RGBA png": ("m.png", lambda p, m: _write(p, np.dstack([_colour(m, (255, 255, 255)),
                                                            np.full(m.shape, 255, np.uint8)])),
                 True),
    "RGBA alpha only": ("m.png", lambda p, m: _write(p, np.dstack([np.zeros((*m.shape, 3),
                                                                             np.uint8),
                                                                    m * 255])), True),
    "grey+alpha png": ("m.png", lambda p, m: _pil(p, np.dstack([m * 255, np.full(m.shape, 255,
                                                                                   np.uint8)]),
                                                  "LA"), True),
    "palette png": ("m.png", lambda p, m: _pil(p, m, "P", [0, 0, 0, 0, 200, 0]), True),
    # The colours count, not the indices: here index 0 is the (white) defect.
    "palette png, swapped": ("m.png", lambda p, m: _pil(p, 1 - m, "P", [255, 255, 255, 0, 0, 0]),
                             True),
    "1-bit png": ("m.png", lambda p, m: _pil(p, m, "1"), True),
    "bmp": ("m.bmp", lambda p, m: _write(p, m * 255), True),
    "RGB bmp": ("m.bmp", lambda p, m: _write(p, _colour(m, (0, 0, 255))), True),
    "1-bit bmp": ("m.bmp", lambda p, m: _pil(p, m, "1"), True),
    "tiff": ("m.tif", lambda p, m: _write(p, m * 255), True),
    "16-bit tiff": ("m.tiff", lambda p, m: _write(p, m.astype(np.uint16) * 65535), True),
    "float tiff": ("m.tif", lambda p, m: _write(p, m.astype(np.float32)), True),
}


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_every_encoding_reads_back_as_the_clean_mask(tmp_path, name):
    filename, write, exact = ENCODINGS[name]
    clean = _clean()
    path = tmp_path / filename
    write(path, clean.astype(np.uint8))
    got = masks.read_mask(str(path))
    assert got.dtype == bool and got.shape == clean.shape
    if exact:
        np.testing.assert_array_equal(got, clean)
    else:  # lossy: only pixels on the edge may differ, and few of them
        kernel = np.ones((3, 3), np.uint8)
        edge = cv2.dilate(clean.astype(np.uint8), kernel) != cv2.erode(clean.astype(np.uint8),
                                                                         kernel)
        wrong = got != clean
        assert not (wrong & ~edge).any(), f"{name}: pixels away from the edges differ"
        assert wrong.sum() <= 0.05 * edge.sum(), f"{name}: {wrong.sum()} edge pixels differ"


def test_binarise_is_at_least_the_threshold_times_the_full_scale():
    values = np.array([[0, 127, 128, 255]], np.uint8)
    np.testing.assert_array_equal(masks.binarise(values, 255.0), [[0, 0, 1, 1]])
    np.testing.assert_array_equal(masks.binarise(values, 255.0, 0.25), [[0, 1, 1, 1]])
    np.testing.assert_array_equal(masks.binarise(values, 255.0, 1.0), [[0, 0, 0, 1]])
    wide = np.array([[0, 32767, 32768, 65535]], np.uint16)
    assert masks.full_scale(wide) == 65535.0
    np.testing.assert_array_equal(masks.binarise(wide, 65535.0), [[0, 0, 1, 1]])
    floats = np.array([[0.0, 0.4, 0.6]], np.float32)
    assert masks.full_scale(floats) == 1.0
    np.testing.assert_array_equal(masks.binarise(floats, 1.0), [[0, 0, 1]])
    assert masks.cut(255.0, 0.5) == 128 and masks.cut(65535.0, 0.5) == 32768


def test_label_masks_and_empty_masks():
    # No pixel reaches the cut but some are non-zero: labels, non-zero = defect.
    labels = np.array([[0, 1, 2, 7]], np.uint8)
    np.testing.assert_array_equal(masks.binarise(labels, 255.0), [[0, 1, 1, 1]])
    # Once one pixel reaches the cut, the threshold decides everywhere.
    np.testing.assert_array_equal(masks.binarise(np.array([[0, 1, 200]], np.uint8), 255.0),
                                  [[0, 0, 1]])
    assert not masks.binarise(np.zeros((3, 4), np.uint8), 255.0).any()


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.5])
def test_threshold_outside_zero_one_is_refused(threshold):
    with pytest.raises(ValueError, match=r"mask_threshold must be in \(0, 1\]"):
        masks.binarise(np.zeros((2, 2), np.uint8), 255.0, threshold)
    with pytest.raises(ValueError, match="mask_threshold"):
        RunConfig(mask_threshold=threshold)


def test_several_files_are_merged_by_or_and_resized_nearest(tmp_path):
    a, b = np.zeros((40, 60), np.uint8), np.zeros((40, 60), np.uint8)
    a[5:10, 5:10], b[20:30, 30:50] = 255, 1
    _write(tmp_path / "a.png", a)
    _write(tmp_path / "b.png", b)
    merged = masks.read_mask((str(tmp_path / "a.png"), str(tmp_path / "b.png")))
    np.testing.assert_array_equal(merged, (a > 0) | (b > 0))
    small = masks.read_mask([str(tmp_path / "a.png"), str(tmp_path / "b.png")], (20, 30))
    np.testing.assert_array_equal(small, masks.resize_nearest(merged, (20, 30)))
    np.testing.assert_array_equal(small, merged[1::2, 1::2])  # TF: half-pixel centres
    one = masks.read_mask(str(tmp_path / "b.png"), (20, 30))
    assert one.dtype == bool and one.sum() == 50


def test_unreadable_masks_fail_naming_the_file(tmp_path):
    path = tmp_path / "m.png"
    path.write_text("not a mask")
    with pytest.raises(DataError, match=rf"{path}: not a PNG, JPEG, BMP or TIFF mask"):
        masks.read_mask(str(path))
    with pytest.raises(DataError, match="cannot be read"):
        masks.read_mask(str(tmp_path / "missing.png"))
    _write(path, np.zeros((30, 40), np.uint8))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError, match=rf"{path}: truncated or corrupt PNG mask"):
        masks.read_mask(str(path))
    tiff = tmp_path / "m.tif"
    _write(tiff, np.zeros((30, 40), np.uint8))
    tiff.write_bytes(tiff.read_bytes()[:20])
    with pytest.raises(DataError, match=rf"{tiff}: truncated or corrupt TIFF mask"):
        masks.read_mask(str(tiff))


# ------------------------------------------------------------------------------------------
# The validator: counted conversions, warnings naming files, errors that still stop the run.


@pytest.fixture
def washer(tmp_path):
    """A copy of testdata's washer: 3 train, 2 good test, the 8 scratch images and masks."""
    return copy_washer(tmp_path, scratch=8)


def _gt(root, i, ext=".png"):
    return root / "washer" / "ground_truth" / "scratch" / f"00{i}_mask{ext}"


def _mask(root, i):
    return cv2.imread(str(_gt(root, i)), cv2.IMREAD_UNCHANGED) > 0


def test_report_prints_one_line_per_kind_of_conversion(washer):
    clean = {i: _mask(washer, i) for i in range(8)}
    for i in (0, 1, 2):
        _write(_gt(washer, i), _blurred(clean[i].astype(np.uint8)))
    for i in (3, 4):
        _write(_gt(washer, i), clean[i].astype(np.uint8))
    for i in (5, 6):
        _write(_gt(washer, i), _colour(clean[i], (255, 0, 0)))
    _write(_gt(washer, 7), clean[7].astype(np.uint8)[::2, ::2] * 255)  # half size
    report = validate.validate_category(data.index_mvtec(str(washer), "washer"))
    assert report.notes() == [
        "[washer] 2 RGB masks converted to grey (largest colour channel)",
        "[washer] 3 masks binarised at 128 of 255: values between 0 and 255 (smoothed or "
        "compressed edges)",
        "[washer] 2 masks read as 0/1 (1 = defect)",
        "[washer] 1 mask resized to its image's size (nearest neighbour)",
    ]
    assert report.warnings() == [] and report.num_masks == 8
    # The threshold is a parameter and shows in the line.
    low = validate.validate_category(data.index_mvtec(str(washer), "washer"),
                                     mask_threshold=0.25)
    assert "[washer] 3 masks binarised at 64 of 255" in "\n".join(low.notes())


def test_empty_and_full_masks_are_warnings_naming_the_files(washer):
    for i in range(6):
        _write(_gt(washer, i), np.zeros((112, 144), np.uint8))
    _write(_gt(washer, 6), np.full((112, 144), 255, np.uint8))
    report = validate.validate_category(data.index_mvtec(str(washer), "washer"))
    empty, full = report.warnings()
    assert empty.startswith("[washer] 6 defective image(s) have an all-zero mask (no defect "
                            f"pixel): {_gt(washer, 0)}, {_gt(washer, 1)}, ")
    assert empty.endswith(f"{_gt(washer, 4)} and 1 more")
    assert full == ("[washer] 1 mask(s) mark every pixel as a defect (inverted, defects black "
                    f"on white?): {_gt(washer, 6)}")


def test_aspect_ratio_mismatch_is_an_error_naming_both_files(washer):
    _write(_gt(washer, 2), np.zeros((112, 112), np.uint8))
    image = washer / "washer" / "test" / "scratch" / "002.png"
    with pytest.raises(DataError, match="1 problem") as info:
        validate.validate_category(data.index_mvtec(str(washer), "washer"))
    assert f"{_gt(washer, 2)}: mask is 112x112 but its image {image} is 144x112" in str(info.value)


def test_missing_and_corrupt_masks_still_stop_the_run(washer):
    _gt(washer, 1).unlink()
    contents = _gt(washer, 3).read_bytes()
    _gt(washer, 3).write_bytes(contents[: len(contents) // 2])
    with pytest.raises(DataError) as info:
        validate.validate_category(data.index_mvtec(str(washer), "washer"))
    message = str(info.value)
    assert "2 problem(s)" in message and "defective test image without a mask" in message
    assert f"{_gt(washer, 3)}: truncated or corrupt PNG mask" in message


def test_indexer_finds_jpeg_bmp_and_tiff_masks(washer):
    for i, ext in ((0, ".jpg"), (1, ".bmp"), (2, ".tif"), (3, ".tiff")):
        clean = _mask(washer, i)
        _gt(washer, i).unlink()
        _write(_gt(washer, i, ext), clean.astype(np.uint8) * 255)
    indexed = data.index_mvtec(str(washer), "washer")
    found = [m for m in indexed.mask_files if m]
    assert [pathlib.Path(m).name for m in found[:4]] == [
        "000_mask.jpg", "001_mask.bmp", "002_mask.tif", "003_mask.tiff"]
    assert indexed.ignored_files == ()
    report = validate.validate_category(indexed)
    assert report.num_masks == 8 and report.warnings() == []
    folder = data.index_folders("w", str(washer / "washer/train/good"),
                                str(washer / "washer/test/good"),
                                [str(washer / "washer/test/scratch")],
                                mask_dir=str(washer / "washer/ground_truth/scratch"))
    assert folder.mask_files == indexed.mask_files


def test_several_mask_files_per_image(washer):
    indexed = data.index_mvtec(str(washer), "washer")
    second = washer / "extra.png"
    extra = np.zeros((112, 144), np.uint8)
    extra[:10, :10] = 255
    _write(second, extra)
    entries = tuple((m, str(second)) if m and m.endswith("000_mask.png") else m
                    for m in indexed.mask_files)
    several = dataclasses.replace(indexed, mask_files=entries)
    report = validate.validate_category(several)
    assert report.notes() == ["[washer] 1 image(s) with several mask files, merged by logical OR"]
    assert report.num_masks == 9
    from cutpaste_tf.pipeline import localize

    got, usable = localize.load_masks(several, (112, 144))
    want, _ = localize.load_masks(indexed, (112, 144))
    i = entries.index(next(e for e in entries if isinstance(e, tuple)))
    np.testing.assert_array_equal(got[i], want[i] | (extra > 0))
    assert usable.all()


# ------------------------------------------------------------------------------------------
# Config: the threshold is part of the run; old model dirs without it still load.


def test_mask_threshold_in_the_config_and_old_model_dirs(tmp_path):
    config = RunConfig(mask_threshold=0.3)
    assert config_lib.from_dict(RunConfig, json.loads(config_lib.to_json(config))) == config
    old = json.loads(config_lib.to_json(RunConfig()))
    del old["mask_threshold"]
    assert config_lib.from_dict(RunConfig, old).mask_threshold == 0.5
    rundir.check_model_dir(str(tmp_path), RunConfig())
    stored = json.loads((tmp_path / "config.json").read_text())
    del stored["mask_threshold"]  # a model dir written before the field existed
    (tmp_path / "config.json").write_text(json.dumps(stored))
    rundir.check_model_dir(str(tmp_path), RunConfig())
    with pytest.raises(ValueError, match="mask_threshold"):
        rundir.check_model_dir(str(tmp_path), RunConfig(mask_threshold=0.3))


# ------------------------------------------------------------------------------------------
# The acceptance check: testdata with its masks saved four other ways gives the same pixel AUROC.


VARIANTS = {
    "smoothed": (".png", lambda m: _blurred(m)),
    "0/1": (".png", lambda m: m),
    "JPEG": (".jpg", lambda m: m * 255),
    "RGB": (".png", lambda m: _colour(m > 0, (0, 255, 0))),
}


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    """testdata copied once per variant, its masks rewritten in that variant's encoding."""
    out = {}
    for name, (ext, encode) in VARIANTS.items():
        root = tmp_path_factory.mktemp("variant")
        shutil.copytree(TESTDATA, root, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.py", "*.md"))
        for path in root.glob("*/ground_truth/*/*_mask.png"):
            clean = (cv2.imread(str(path), cv2.IMREAD_UNCHANGED) > 0).astype(np.uint8)
            path.unlink()
            _write(path.with_suffix(ext), encode(clean))
        out[name] = root
    return out


@pytest.mark.parametrize("category", ["washer", "fabric"])
def test_pixel_auroc_does_not_depend_on_how_masks_are_saved(variants, category, tmp_path,
                                                            tiny_run):
    from cutpaste_tf.pipeline import localize

    model, density = tiny_run.model_and_density
    config = dataclasses.replace(tiny_run.config, localization=dataclasses.replace(
        tiny_run.config.localization, heatmaps=False))
    original = data.index_mvtec(str(TESTDATA), category)
    want = localize.gradcam_results(model, density, original, config, str(tmp_path))
    # A sharper probe than an untrained model's maps: the masks themselves, blurred, at the
    # native size, where every wrongly read edge pixel would move the AUROC.
    native = cv2.imread(original.test_files[0]).shape[:2]
    clean, _ = localize.load_masks(original, native)
    rng = np.random.default_rng(0)
    sharp = np.stack([cv2.GaussianBlur(m.astype(np.float32), (0, 0), 4) for m in clean])
    sharp += rng.normal(0, 0.05, sharp.shape)
    want_sharp = localize.pixel_results(sharp, original, native)["pixel_auroc"]
    for name, root in variants.items():
        indexed = data.index_mvtec(str(root), category)
        report = validate.validate_category(indexed)
        assert report.warnings() == [] and report.num_masks == 24, name
        assert len(report.notes()) == 1, report.notes()  # one line: 24 masks of one kind
        assert report.notes()[0].startswith(f"[{category}] 24 "), report.notes()
        got = localize.gradcam_results(model, density, indexed, config, str(tmp_path))
        assert got["pixel_auroc"] == pytest.approx(want["pixel_auroc"], abs=0.005), name
        assert got["aupro"] == pytest.approx(want["aupro"], abs=0.01), name
        got_sharp = localize.pixel_results(sharp, indexed, native)["pixel_auroc"]
        assert got_sharp == pytest.approx(want_sharp, abs=0.005), name
    assert want_sharp > 0.9
