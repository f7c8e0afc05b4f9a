"""End to end: a tiny patch-model run through launch.train, its SavedModel, and GradCAM
localisation of an image-level run."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from cutpaste_tf import config as config_lib
from cutpaste_tf import data
from cutpaste_tf.config import LocalizationConfig, ModelConfig, RunConfig, TrainConfig
from cutpaste_tf.evaluation import evaluate
from cutpaste_tf.pipeline import patch_runner as localization_runner
from cutpaste_tf.pipeline import runner
from cutpaste_tf.serving import savedmodel

ROOT = pathlib.Path(__file__).resolve().parents[2]
TESTDATA = str(ROOT / "testdata")
TINY_PATCH = ["--flagfile=configs/quickstart_patch.flags", "--category=washer",
              "--image_size=48,64", "--train_patch_size=32", "--dense_patch_size=16",
              "--stride=8", "--batch_size=4", "--epochs=1", "--steps_per_epoch=2",
              "--checkpoint_every=2", "--log_every=1", "--head_widths=16", "--progress=false"]


@pytest.fixture(scope="module")
def patch_run(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("patch") / "model"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([sys.executable, "-m", "launch.train", *TINY_PATCH,
                             f"--model_dir={model_dir}"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return model_dir, result


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


def test_image_model_gradcam_localisation_metrics_and_pictures(tmp_path):
    """What run_category adds for an image model on data with masks (untrained model here)."""
    washer = data.index_mvtec(TESTDATA, "washer")
    config = RunConfig(model=ModelConfig(head_widths=(16,)),
                       train=TrainConfig(task="cutpaste", image_size=(32, 48), batch_size=4),
                       eval_batch_size=36)
    model = runner.build_model(config)
    estimator = evaluate.fit_density(model, washer, (32, 48), config.density, 60)
    result = localization_runner.gradcam_results(model, estimator, washer, config,
                                                 str(tmp_path))
    assert result["localization_method"] == "gradcam"
    # auto at 32x48: layer1, the only stage with a map of at least 8x8.
    assert result["gradcam_layer"] == "layer1" and result["gradcam_map_size"] == [8, 12]
    assert 0.0 <= result["pixel_auroc"] <= 1.0 and 0.0 <= result["aupro"] <= 1.0
    assert result["num_pixel_eval_images"] == 36
    assert (tmp_path / "heatmaps" / "washer_grid.png").exists()
    no_masks = dataclasses.replace(washer, mask_files=(None,) * len(washer.mask_files))
    assert localization_runner.gradcam_results(model, estimator, no_masks, config,
                                               str(tmp_path)) == {}
    # A forced map under 8x8 gives the reason instead of a number, and no pictures.
    forced = dataclasses.replace(config, localization=LocalizationConfig(gradcam_layer="layer3"))
    small = localization_runner.gradcam_results(model, estimator, washer, forced,
                                                str(tmp_path / "forced"))
    assert small == {"localization_method": "gradcam", "gradcam_layer": "layer3",
                     "gradcam_map_size": [2, 3], "pixel_auroc_not_reported": (
                         "pixel AUROC not reported: the GradCAM map (layer3) is 2×3 at 32×48 px "
                         "(needs ≥ 8×8; use --gradcam_layer=layer1 or a larger --image_size)")}
    assert not (tmp_path / "forced").exists()


def test_unreported_pixel_auroc_reaches_results_md_and_json(tmp_path):
    why = ("pixel AUROC not reported: the GradCAM map (layer4) is 2×2 at 64 px (needs ≥ 8×8; "
           "use --gradcam_layer=layer2 or a larger --image_size)")
    for name, kind, extra in (
            ("fabric", "texture", {"gradcam_layer": "layer2", "gradcam_map_size": [8, 8],
                                   "pixel_auroc": 0.8, "aupro": 0.5}),
            ("washer", "object", {"gradcam_layer": "layer4", "gradcam_map_size": [2, 2],
                                  "pixel_auroc_not_reported": why})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps({
            "category": name, "kind": kind, "auroc": 0.9, "localization_method": "gradcam",
            **extra}))
    table = runner.summarize_run(str(tmp_path), "cutpaste")
    assert "### Localisation (gradcam layer2), cutpaste" in table
    assert "| fabric | 80.0 |" in table and "| washer | 90.0 |" in table  # image AUROC only
    assert f"Localisation (gradcam): washer: {why}." in table
    summary = json.loads((tmp_path / "results.json").read_text())
    assert summary["pixel_not_reported"] == {"washer": why}
    assert summary["pixel_averages"] == {"texture": 0.8, "all": 0.8}


def test_localization_config_checks_and_json_round_trip():
    config = RunConfig(localization=LocalizationConfig(model_type="patch", per_location=False))
    assert config_lib.from_json(RunConfig, config_lib.to_json(config)) == config
    old = json.loads(config_lib.to_json(RunConfig()))
    del old["localization"]                                   # a config.json from before
    assert config_lib.from_dict(RunConfig, old) == RunConfig()
    assert LocalizationConfig(patch_size=32).upsample_sigma == 8.0
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


def test_a_model_dir_from_before_the_gradcam_layer_choice_resumes(tmp_path):
    config = RunConfig(localization=LocalizationConfig(gradcam_layer="layer3"))
    runner.check_model_dir(str(tmp_path), config)
    written = json.loads((tmp_path / runner.CONFIG_FILE).read_text())
    assert written["localization"]["gradcam_layer"] == "layer3"
    del written["localization"]["gradcam_layer"]
    (tmp_path / runner.CONFIG_FILE).write_text(json.dumps(written))
    runner.check_model_dir(str(tmp_path), config)  # written before the choice: resumes
