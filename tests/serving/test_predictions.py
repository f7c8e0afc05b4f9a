"""cutpaste_tf/serving/predictions.py in this process: which files are scored, a bad file failing
only itself, and the overlays (launch.predict on a real export: tests/serving/test_export.py)."""

import pathlib
import shutil

import cv2
import numpy as np
import pytest
import tensorflow as tf

from cutpaste_tf.serving import predictions

WASHER = pathlib.Path(__file__).resolve().parents[2] / "testdata" / "washer" / "test"


def _fake_signature(image_bytes):
    """Stands in for serving_default: decodes every image in the graph (an undecodable one
    fails the whole batch, as in the SavedModel) and scores it by its mean."""
    images = tf.map_fn(lambda b: tf.cast(tf.io.decode_png(b, channels=3), tf.float32),
                       image_bytes, fn_output_signature=tf.TensorSpec([None, None, 3]))
    score = tf.reduce_mean(images, axis=[1, 2, 3])
    return {"score": score, "threshold": tf.fill(tf.shape(score), 100.0)}


def test_find_images_in_a_folder_and_a_glob(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for rel in ("a/x.png", "a/b/y.JPG", "a/notes.txt", "z.bmp"):
        (tmp_path / rel).write_bytes(b"")
    paths, root = predictions.find_images(str(tmp_path))
    assert root == str(tmp_path)
    assert paths == sorted(str(tmp_path / r) for r in ("a/x.png", "a/b/y.JPG", "z.bmp"))
    paths, root = predictions.find_images(str(tmp_path / "a" / "*.png"))
    assert paths == [str(tmp_path / "a" / "x.png")] and root == str(tmp_path / "a")
    assert predictions.find_images(str(tmp_path / "none" / "*.png")) == ([], "")


def test_a_bad_file_fails_only_itself(tmp_path):
    good = [str(p) for p in sorted((WASHER / "good").glob("*.png"))[:2]]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    paths = [good[0], str(broken), good[1], str(tmp_path / "missing.png")]
    out = predictions.score_batch(_fake_signature, paths)
    assert [p for p, _, _ in out] == paths
    assert out[1][1] is None and out[1][2].startswith("cannot decode: ")
    assert out[3][1] is None and out[3][2].startswith("cannot read: ")
    for i in (0, 2):
        image = cv2.imread(paths[i], cv2.IMREAD_COLOR)
        assert out[i][2] == "" and float(out[i][1]["score"]) == pytest.approx(image.mean(), 1e-4)
        assert out[i][1]["_bytes"] == pathlib.Path(paths[i]).read_bytes()


def test_overlay_is_the_image_size_and_honours_the_scale(tmp_path):
    path = sorted((WASHER / "good").glob("*.png"))[0]
    contents = path.read_bytes()
    height, width = cv2.imread(str(path)).shape[:2]
    heat = np.linspace(0.0, 1.0, 12, dtype=np.float32).reshape(3, 4)
    png = predictions.overlay(contents, heat, None)
    picture = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == (height, width, 3)
    # Values far below the scale's low end all take its lowest colour: a uniform blend.
    flat = cv2.imdecode(np.frombuffer(predictions.overlay(contents, heat, (5.0, 6.0)), np.uint8),
                        cv2.IMREAD_COLOR)
    assert not np.array_equal(flat, picture)
    same = cv2.imdecode(np.frombuffer(predictions.overlay(contents, heat - 10.0, (5.0, 6.0)),
                                      np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(flat, same)


def test_predict_images_refuses_a_spec_with_no_images(tmp_path):
    export = tmp_path / "export" / "1"
    export.mkdir(parents=True)
    (export / "saved_model.pb").write_bytes(b"")
    shutil.copy(sorted((WASHER / "good").glob("*.png"))[0], tmp_path / "one.png")
    with pytest.raises(ValueError, match=r"images=.*nothing.* matches no image files"):
        predictions.predict_images(str(export), str(tmp_path / "nothing" / "*.png"),
                                   str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
