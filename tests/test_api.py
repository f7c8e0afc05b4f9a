"""cutpaste_tf.api: the Python front door (train, experiment, load) over the launchers' driver."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from helpers import ROOT

import cutpaste_tf


def test_the_front_door_is_the_packages():
    from cutpaste_tf import api
    assert cutpaste_tf.train is api.train and cutpaste_tf.load is api.load
    assert cutpaste_tf.experiment is api.experiment
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        cutpaste_tf.trian  # noqa: B018


def test_a_bad_setting_is_named_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="learnig_rate is not a setting .* did you mean "
                                         "learning_rate"):
        cutpaste_tf.train(data_dir="testdata", model_dir=str(tmp_path / "m"), learnig_rate=0.1)
    with pytest.raises(ValueError, match="model_dir is required"):
        cutpaste_tf.train(data_dir=str(ROOT / "testdata"))
    with pytest.raises(ValueError, match="seeds=0: a count must be at least 1"):
        cutpaste_tf.experiment(data_dir=str(ROOT / "testdata"), seeds=0,
                               experiment_dir=str(tmp_path / "e"))
    assert not (tmp_path / "m").exists() and not (tmp_path / "e").exists()


def test_a_launch_train_flags_txt_redoes_the_run_from_python(tiny_run, tmp_path, monkeypatch,
                                                             capsys):
    """The run's flags.txt (written by launch.train) read by the API gives the same config
    (else the model dir is refused); a finished run trains nothing again. progress=False
    prints nothing; a callable gets the lines launch.train prints."""
    monkeypatch.chdir(ROOT)
    model_dir = tiny_run.copy(tmp_path)
    flags = str(model_dir / "flags.txt")
    result = cutpaste_tf.train(flags, model_dir=str(model_dir), progress=False)
    assert capsys.readouterr().out == ""
    assert result.ok and list(result.categories) == ["washer"]
    assert result.categories["washer"]["train_steps"] == 3
    assert result.exports == {"washer": str(model_dir / "export" / "washer" / "1")}
    assert result.results == str(model_dir / "results.json") and "| washer |" in result.table
    lines = []
    cutpaste_tf.train(flags, model_dir=str(model_dir), progress=lines.append)
    assert capsys.readouterr().out == ""
    assert "[washer] evaluation on 36 test images: started" in lines
    assert f"Results: {model_dir / 'results.json'}" in lines


def test_a_scorer_scores_files_and_arrays_alike(tiny_run):
    scorer = cutpaste_tf.load(str(tiny_run.model_dir))
    assert scorer.image_size == (32, 32) and not scorer.has_anomaly_map
    folder = ROOT / "testdata" / "washer" / "test" / "scratch"
    from_files = scorer.score(str(folder))
    paths = sorted(str(p) for p in folder.glob("*.png"))
    assert from_files.paths == paths and from_files.failed == {}
    images = np.stack([tf.io.decode_png(tf.io.read_file(p), channels=3).numpy() for p in paths])
    from_uint8 = scorer.score(images, batch_size=3)
    from_float = scorer.score(images.astype(np.float32) / 255.0)
    np.testing.assert_allclose(from_uint8.scores, from_files.scores, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(from_float.scores, from_files.scores, rtol=1e-4, atol=1e-4)
    one = scorer.score(paths[0], threshold=-np.inf)
    assert len(one) == 1 and one.is_anomaly.all() and one.threshold == -np.inf
    assert scorer.score(images[0]).scores.shape == (1,)


def test_a_file_that_cannot_be_decoded_fails_alone(tiny_run, tmp_path):
    good = ROOT / "testdata" / "washer" / "test" / "good" / "000.png"
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    scores = cutpaste_tf.load(str(tiny_run.model_dir)).score([str(good), str(bad)])
    assert scores.paths == [str(good)] and list(scores.failed) == [str(bad)]
    assert "cannot decode" in scores.failed[str(bad)]
    with pytest.raises(ValueError, match="matches no image files"):
        cutpaste_tf.load(str(tiny_run.model_dir)).score(str(tmp_path / "*.jpg"))


def test_the_scorer_says_when_the_images_drifted(dark_run):
    """Scoring images captured darker than the training images warns (DriftWarning) and says
    so in the result; the training capture itself passes quietly."""
    model_dir, data, _ = dark_run
    scorer = cutpaste_tf.load(str(model_dir))
    with pytest.warns(cutpaste_tf.DriftWarning, match="these images differ from the training "
                                                      r"images \(mean grey"):
        dark = scorer.score(str(data / "washer" / "test" / "good"))
    assert dark.drift["drifted"] and dark.drift_warning.startswith("warning: these images")
    assert dark.image_stats.shape == (len(dark), 4)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", cutpaste_tf.DriftWarning)
        same = scorer.score(str(ROOT / "testdata" / "washer" / "train" / "good"))
    assert same.drift["drifted"] is False and same.drift_warning == ""
    assert np.median(dark.image_stats[:, 0]) < 0.85 * np.median(same.image_stats[:, 0])
