"""End to end: a tiny patch-model run through launch.train (cutpaste_tf/pipeline/patch.py under
the runner's stages), its SavedModel, its re-export, and the localisation config."""

import csv
import json
import pathlib
import shutil

import numpy as np
import pytest
import tensorflow as tf
from helpers import train_run

from cutpaste_tf import config as config_lib
from cutpaste_tf import rundir
from cutpaste_tf.config import LocalizationConfig, ModelConfig, RunConfig, TrainConfig
from cutpaste_tf.pipeline import reexport
from cutpaste_tf.serving import savedmodel

TINY_PATCH = ["--flagfile=configs/quickstart_patch.flags", "--category=washer",
              "--image_size=48,64", "--train_patch_size=32", "--dense_patch_size=16",
              "--stride=8", "--batch_size=4", "--epochs=1", "--steps_per_epoch=2",
              "--checkpoint_every=2", "--log_every=1", "--head_widths=16", "--progress=false"]


@pytest.fixture(scope="module")
def patch_run(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("patch") / "model"
    return model_dir, train_run(model_dir, *TINY_PATCH)


def test_patch_run_reports_pixel_metrics_and_writes_heatmaps(patch_run):
    model_dir, _ = patch_run
    summary = json.loads((model_dir / "results.json").read_text())
    washer = summary["categories"]["washer"]
    assert washer["model_type"] == "patch" and washer["per_location_density"] is True  # aligned
    assert washer["score_map_size"] == [5, 7]              # (48-16)/8+1, (64-16)/8+1
    for key in ("auroc", "pixel_auroc", "aupro"):
        assert 0.0 <= washer[key] <= 1.0
    assert set(washer["pixel_auroc_per_defect"]) == {"missing", "scratch", "stain"}
    assert summary["pixel_averages"]["all"] == pytest.approx(washer["pixel_auroc"])
    assert "Pixel AUROC" in (model_dir / "results.md").read_text()
    heatmaps = model_dir / "washer" / "heatmaps"
    assert (heatmaps / "washer_grid.png").exists()
    assert len(list(heatmaps.glob("*/*.png"))) == 36        # every test image
    assert not list(heatmaps.rglob("*.tmp-*"))


def test_patch_export_returns_map_at_input_resolution_and_the_evaluated_score(patch_run):
    model_dir, _ = patch_run
    with open(model_dir / "washer" / "scores.csv") as f:
        rows = list(csv.DictReader(f))[::9]
    images = np.stack([tf.io.decode_png(tf.io.read_file(r["path"]), channels=3).numpy()
                       for r in rows])                       # native 112 x 144
    path = str(model_dir / "export" / "washer" / "1")
    loaded = savedmodel.load(path)
    out = loaded.signatures["serve_uint8"](images=tf.constant(images))
    assert out["anomaly_map"].shape == (len(rows), 112, 144)
    assert out["score_map"].shape == (len(rows), 5, 7)
    np.testing.assert_allclose(out["score"].numpy(), [float(r["score"]) for r in rows],
                               rtol=1e-4)
    np.testing.assert_allclose(out["score"].numpy(),
                               out["score_map"].numpy().max(axis=(1, 2)), rtol=1e-6)
    assert savedmodel.read_metadata(path)["model_type"] == "patch"
    threshold = float(out["threshold"].numpy()[0])
    np.testing.assert_array_equal(out["is_anomaly"].numpy(), out["score"].numpy() > threshold)
    # Encoded images (the TF Serving signature) give the same scores; maps at the model size.
    encoded = [tf.io.read_file(r["path"]) for r in rows]
    out_bytes = loaded.signatures["serving_default"](image_bytes=tf.stack(encoded))
    np.testing.assert_allclose(out_bytes["score"].numpy(), out["score"].numpy(), rtol=1e-4)


def test_localization_config_checks_and_json_round_trip():
    config = RunConfig(localization=LocalizationConfig(model_type="patch", per_location=False))
    assert config_lib.from_dict(RunConfig, json.loads(config_lib.to_json(config))) == config
    old = json.loads(config_lib.to_json(RunConfig()))
    del old["localization"]                                   # a config.json from before
    assert config_lib.from_dict(RunConfig, old) == RunConfig()
    assert LocalizationConfig(dense_patch_size=32).sigma_pixels == 8.0
    with pytest.raises(ValueError, match="does not fit"):
        RunConfig(train=TrainConfig(image_size=(48, 48)),
                  localization=LocalizationConfig(model_type="patch"))
    with pytest.raises(ValueError, match="stride"):
        LocalizationConfig(stride=0)
    with pytest.raises(ValueError, match="model_type"):
        LocalizationConfig(model_type="pixel")
    with pytest.raises(ValueError, match="gradcam_layer must be one of"):
        LocalizationConfig(gradcam_layer="layer5")
    with pytest.raises(ValueError, match="takes only 'auto'"):
        RunConfig(model=ModelConfig(backbone="efficientnet_b4"),
                  localization=LocalizationConfig(gradcam_layer="layer3"))


def test_patch_run_reexports_with_a_new_threshold(patch_run, tmp_path):
    """launch.export's library call on a patch model: its dense density found, the next
    version written with the new threshold and the same scores, the records updated."""
    model_dir = pathlib.Path(shutil.copytree(patch_run[0], tmp_path / "model"))
    export_dir = str(tmp_path / "export")
    threshold = json.loads((model_dir / "washer" / rundir.THRESHOLD_FILE).read_text())
    assert threshold["normal_method"] == "training_quantile"  # no hold-out in this run
    paths = reexport.reexport_run(str(model_dir), ["washer"], export_dir, value=3.5)
    assert paths == [str(tmp_path / "export" / "washer" / "1")]
    meta = savedmodel.read_metadata(paths[0])
    assert meta["threshold"] == 3.5 and meta["model_type"] == "patch"
    assert meta["threshold_info"]["method"] == "manual"
    images = tf.constant(np.zeros((1, 48, 64, 3), np.uint8))
    new = savedmodel.load(paths[0]).signatures["serve_uint8"](images=images)
    old = savedmodel.load(str(model_dir / "export" / "washer" / "1")).signatures[
        "serve_uint8"](images=images)
    np.testing.assert_allclose(new["score"].numpy(), old["score"].numpy(), rtol=1e-5)
    assert float(new["threshold"][0]) == 3.5
    record = json.loads((model_dir / "washer" / rundir.THRESHOLD_FILE).read_text())
    assert record["threshold"]["value"] == 3.5
    assert record["normal_scores"] == threshold["normal_scores"]  # kept for a later quantile
    result = json.loads((model_dir / "washer" / rundir.RESULTS_FILE).read_text())
    assert result["threshold"]["value"] == 3.5 and result["export_path"] == paths[0]
