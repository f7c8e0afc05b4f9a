"""Dataset indexing (MVTec layout, folders) and the tf.data pipelines."""

import json
import os
import pathlib

import cv2
import numpy as np
import pytest
import tensorflow as tf

from cutpaste_tf import data
from cutpaste_tf.data import masks

TESTDATA = str(pathlib.Path(__file__).resolve().parents[2] / "testdata")


# ------------------------------------------------------------------------------------------
# Indexing.


def test_index_mvtec_on_testdata():
    washer = data.index_mvtec(TESTDATA, "washer")
    assert washer.kind == "object" and washer.aligned
    assert len(washer.train_files) == 60
    assert washer.test_labels.count(0) == 12 and washer.test_labels.count(1) == 24
    assert washer.defect_types == ["missing", "scratch", "stain"]
    for path, label, defect, mask in zip(washer.test_files, washer.test_labels,
                                         washer.test_defects, washer.mask_files):
        assert os.path.basename(os.path.dirname(path)) == defect
        assert (label == 0) == (defect == "good")
        assert (mask is None) == (label == 0)
        if mask:
            assert mask.endswith(os.path.splitext(os.path.basename(path))[0] + "_mask.png")
    fabric = data.index_mvtec(TESTDATA, "fabric")
    assert fabric.kind == "texture" and not fabric.aligned
    assert data.mvtec_categories(TESTDATA) == ["fabric", "washer"]


def test_paper_kinds_for_mvtec_names(tmp_path):
    _make_category(tmp_path, "screw")
    _make_category(tmp_path, "bottle")
    _make_category(tmp_path, "grid")
    assert data.category_info(str(tmp_path), "screw") == ("object", False)
    assert data.category_info(str(tmp_path), "bottle") == ("object", True)
    assert data.category_info(str(tmp_path), "grid") == ("texture", False)
    assert data.index_mvtec(str(tmp_path), "grid").kind == "texture"


def test_unknown_category_lists_the_available_ones():
    with pytest.raises(data.DataError, match=r"'bottle' not found .*available: fabric, washer"):
        data.index_mvtec(TESTDATA, "bottle")


def test_missing_data_dir_is_named(tmp_path):
    missing = str(tmp_path / "nope")
    with pytest.raises(data.DataError, match="data directory .*nope.* does not exist"):
        data.index_mvtec(missing, "washer")


def test_empty_training_folder_is_named(tmp_path):
    _make_category(tmp_path, "widget", train=0)
    with pytest.raises(data.DataError, match=r"training image folder .*widget/train/good.* holds no images"):
        data.index_mvtec(str(tmp_path), "widget")


def test_missing_defective_test_images(tmp_path):
    _make_category(tmp_path, "widget", defects=())
    with pytest.raises(data.DataError, match="no defective test images"):
        data.index_mvtec(str(tmp_path), "widget")


def test_bad_categories_json(tmp_path):
    _make_category(tmp_path, "widget")
    (tmp_path / "categories.json").write_text(json.dumps({"widget": {"kind": "metal"}}))
    with pytest.raises(data.DataError, match="categories.json.*texture.*object"):
        data.index_mvtec(str(tmp_path), "widget")


def test_index_folders(tmp_path):
    root = _make_category(tmp_path, "widget", defects=("dent", "scratch"))
    masks = tmp_path / "masks"
    masks.mkdir()
    _write(masks / "000_mask.png", np.full((20, 30), 255, np.uint8))
    d = data.index_folders("widget", str(root / "train" / "good"), str(root / "test" / "good"),
                           [str(root / "test" / "dent"), str(root / "test" / "scratch")],
                           mask_dir=str(masks), kind="texture")
    assert d.kind == "texture" and d.defect_types == ["dent", "scratch"]
    assert d.test_labels == (0, 0, 1, 1, 1, 1)
    assert d.mask_files[2].endswith("000_mask.png") and d.mask_files[3] is None
    with pytest.raises(data.DataError, match="no defective test folders"):
        data.index_folders("w", str(root / "train" / "good"), str(root / "test" / "good"), [])


def test_index_folders_without_a_test_good_dir_holds_out_a_seeded_fraction():
    washer = f"{TESTDATA}/washer"
    args = ("w", f"{washer}/train/good", None, [f"{washer}/test/stain"])
    d = data.index_folders(*args, test_good_fraction=0.2, split_seed=0)
    good = [p for p, label in zip(d.test_files, d.test_labels) if not label]
    assert len(good) == 12 and len(d.train_files) == 48  # 20 % of 60
    assert not set(good) & set(d.train_files)
    assert sorted(good + list(d.train_files)) == data.list_images(f"{washer}/train/good")
    assert d.test_defects[:12] == ("good",) * 12 and d.test_labels.count(1) == 8
    again = data.index_folders(*args, test_good_fraction=0.2, split_seed=0)
    assert again == d  # the same seed, the same split
    other = data.index_folders(*args, test_good_fraction=0.2, split_seed=1)
    assert set(other.test_files) != set(d.test_files) and len(other.train_files) == 48
    assert len(data.index_folders(*args, test_good_fraction=0.5).train_files) == 30
    with pytest.raises(data.DataError, match=r"test_good_fraction must be in \(0, 1\), got 1.0"):
        data.index_folders(*args, test_good_fraction=1.0)
    with pytest.raises(data.DataError, match=r"test_good_fraction=0.99 of 60 good images leaves "
                                             r"1 to train on; need at least 2 \(train_dir '"):
        data.index_folders(*args, test_good_fraction=0.99)


# ------------------------------------------------------------------------------------------
# Decoding and preprocessing.


def test_decode_grey_rgba_jpeg_all_give_rgb(tmp_path):
    grey = np.tile(np.arange(40, dtype=np.uint8)[None, :] * 6, (30, 1))
    rgba = np.dstack([grey, grey // 2, grey // 3, np.full_like(grey, 128)])
    _write(tmp_path / "grey.png", grey)
    _write(tmp_path / "rgba.png", rgba)
    _write(tmp_path / "colour.jpg", np.dstack([grey, grey, grey]))
    for name in ("grey.png", "rgba.png", "colour.jpg"):
        image = data.decode(tf.io.read_file(str(tmp_path / name))).numpy()
        assert image.shape == (30, 40, 3) and image.dtype == np.uint8, name
    g = data.decode(tf.io.read_file(str(tmp_path / "grey.png"))).numpy()
    np.testing.assert_array_equal(g[..., 0], grey)
    np.testing.assert_array_equal(g[..., 1], grey)
    rgb = data.decode(tf.io.read_file(str(tmp_path / "rgba.png"))).numpy()
    np.testing.assert_array_equal(rgb[..., 0], grey)  # red stays red: no BGR swap
    np.testing.assert_array_equal(rgb[..., 2], grey // 3)


def test_preprocess_uint8_and_float_agree_and_resize_non_square():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    a = data.preprocess(tf.constant(image), (24, 40)).numpy()
    b = data.preprocess(tf.constant(image.astype(np.float32) / 255.0), (24, 40)).numpy()
    assert a.shape == (24, 40, 3) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert 0.0 <= a.min() and a.max() <= 1.0
    batch = data.preprocess(tf.constant(image[None]), (24, 40)).numpy()
    np.testing.assert_allclose(batch[0], a, atol=1e-6)
    # Same size in, same image out.
    same = data.preprocess(tf.constant(image), (37, 53)).numpy()
    np.testing.assert_allclose(same, image / 255.0, atol=1e-6)


def test_read_mask_is_binary_at_image_size():
    washer = data.index_mvtec(TESTDATA, "washer")
    path = next(m for m in washer.mask_files if m)
    mask = masks.read_mask(path, (64, 80))
    assert mask.shape == (64, 80) and mask.dtype == bool and mask.sum() > 0


# ------------------------------------------------------------------------------------------
# Pipelines.


def test_train_dataset_shapes_labels_and_determinism():
    fabric = data.index_mvtec(TESTDATA, "fabric")
    ds = data.train_dataset(fabric.train_files[:10], (32, 48), "3way", 12, seed=3)
    views, labels = next(iter(ds))
    assert views.shape == (12, 32, 48, 3) and views.dtype == tf.float32
    np.testing.assert_array_equal(labels.numpy(), [0] * 4 + [1] * 4 + [2] * 4)
    again, _ = next(iter(data.train_dataset(fabric.train_files[:10], (32, 48), "3way", 12, seed=3)))
    np.testing.assert_array_equal(views.numpy(), again.numpy())
    other, _ = next(iter(data.train_dataset(fabric.train_files[:10], (32, 48), "3way", 12, seed=4)))
    assert np.abs(views.numpy() - other.numpy()).max() > 0.1
    # Endless, even with fewer images than a batch needs (10 images, 4 per batch).
    count = sum(1 for _ in ds.take(7))
    assert count == 7


@pytest.mark.parametrize("task,crop", [("3way", None), ("union", None), ("3way", (24, 24))])
def test_train_dataset_under_xla_draws_the_same_views(task, crop):
    """jit_augment compiles the augmentation; the random draws are the same, the pixels equal
    the plain graph's up to float rounding, for image views and patch views alike."""
    fabric = data.index_mvtec(TESTDATA, "fabric")
    args = (fabric.train_files[:8], (40, 40), task, 12 if task == "3way" else 8)
    plain = data.train_dataset(*args, seed=5, crop_size=crop)
    jit = data.train_dataset(*args, seed=5, crop_size=crop, jit_augment=True)
    for (a, la), (b, lb) in zip(plain.take(3), jit.take(3)):
        np.testing.assert_array_equal(la.numpy(), lb.numpy())
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
        assert np.abs(a.numpy() - b.numpy()).max() < 1e-5  # no view differs by a pasted patch


def test_train_dataset_rejects_batch_not_multiple_of_views():
    with pytest.raises(ValueError, match="multiple of 2 views"):
        data.train_dataset(["a.png"], (32, 32), "cutpaste", 7, seed=0)


def test_augment_batch_depends_only_on_seed_and_step():
    images = tf.constant(np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3), np.uint8))
    a = data.augment_batch(images, 5, 7, "3way")[0].numpy()
    b = data.augment_batch(images, 5, 7, "3way")[0].numpy()
    c = data.augment_batch(images, 6, 7, "3way")[0].numpy()
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0.05


def test_eval_dataset_keeps_file_order_and_matches_load_image():
    washer = data.index_mvtec(TESTDATA, "washer")
    files = list(washer.test_files[:5])
    batches = [b.numpy() for b in data.eval_dataset(files, (40, 56), batch_size=2)]
    assert [b.shape[0] for b in batches] == [2, 2, 1]
    stacked = np.concatenate(batches)
    for i, path in enumerate(files):
        np.testing.assert_array_equal(stacked[i], data.load_image(tf.constant(path), (40, 56)).numpy())


@pytest.mark.parametrize("name", ["image.png", "image.jpg"])
def test_training_and_evaluation_see_identical_inputs_for_the_same_file(tmp_path, monkeypatch,
                                                                        name):
    # Decoded at 37x53, resized to 24x40: the resize gives values between the 255 levels, which
    # training (cached as uint8) and evaluation (float) once rounded differently.
    rng = np.random.default_rng(2)
    _write(tmp_path / name, rng.integers(0, 256, (37, 53, 3), dtype=np.uint8))
    path, size = str(tmp_path / name), (24, 40)
    evaluated = next(iter(data.eval_dataset([path], size, batch_size=1))).numpy()[0]
    # The training pipeline's uint8 cache, then augment_batch's conversion with the augmentation
    # itself replaced by the identity.
    from cutpaste_tf.ops import tasks
    monkeypatch.setattr(tasks, "make_views", lambda images, seed, task, augment: (images, None))
    source, step = next(iter(data.train_dataset([path], size, "cutpaste", 2, seed=0,
                                                augment_in_pipeline=False)))
    assert source.dtype == tf.uint8 and source.shape == (1, *size, 3)
    trained = data.augment_batch(source, step, 0, "cutpaste")[0].numpy()[0]
    assert evaluated.dtype == trained.dtype == np.float32
    np.testing.assert_array_equal(trained, evaluated)
    np.testing.assert_array_equal(evaluated, data.preprocess(
        data.decode(tf.io.read_file(path)), size).numpy())
    # Rounded to the nearest level after a float resize (not floor(255.5 x), nor unrounded).
    decoded = data.decode(tf.io.read_file(path)).numpy().astype(np.float32)
    resized = tf.image.resize(decoded, size, method="bilinear", antialias=True).numpy()
    levels = np.round(np.clip(resized, 0, 255)).astype(np.float32)
    np.testing.assert_array_equal(evaluated, levels * np.float32(1 / 255))
    np.testing.assert_allclose(evaluated, levels / 255.0, atol=1e-7)


# ------------------------------------------------------------------------------------------
# Helpers.


def _write(path, array):
    if array.ndim == 3 and array.shape[2] == 3:
        array = array[..., ::-1]  # RGB -> BGR for cv2
    elif array.ndim == 3 and array.shape[2] == 4:
        array = array[..., [2, 1, 0, 3]]
    assert cv2.imwrite(str(path), array)


def _make_category(root, name, train=3, good=2, defects=("dent",), per_defect=2):
    base = root / name
    rng = np.random.default_rng(0)
    folders = [("train/good", train), ("test/good", good)] + [(f"test/{d}", per_defect)
                                                              for d in defects]
    for folder, count in folders:
        (base / folder).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            _write(base / folder / f"{i:03d}.png", rng.integers(0, 256, (20, 30, 3), np.uint8))
    return base
