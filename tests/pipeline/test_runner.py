"""cutpaste_tf/pipeline/runner.py: the run's stages, written once for both model types, and what
an image run writes (the tiny run of tests/conftest.py)."""

import dataclasses
import json
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from cutpaste_tf import data, rundir
from cutpaste_tf.config import (
    MODEL_TYPES,
    LocalizationConfig,
    RunConfig,
    ThresholdConfig,
)
from cutpaste_tf.pipeline import build, image, patch, runner

TESTDATA = str(pathlib.Path(__file__).resolve().parents[2] / "testdata")
# What runner.py and reexport.py ask of a model type's module.
STAGES = ("build_model", "start_line", "fit", "threshold", "score", "result_fields", "scorer",
          "load_scorer", "end_line")


def test_every_model_type_provides_every_stage():
    assert set(runner.KINDS) == set(MODEL_TYPES)
    for name, kind in runner.KINDS.items():
        missing = [s for s in STAGES if not callable(getattr(kind, s, None))]
        assert not missing, (name, missing)
        assert isinstance(kind.EXPORT_METADATA, dict)
    assert runner.kind_of(RunConfig()) is image
    patch_config = RunConfig(localization=LocalizationConfig(model_type="patch"))
    assert runner.kind_of(patch_config) is patch
    assert (image.DENSITY_FILE, patch.DENSITY_FILE) == (rundir.DENSITY_FILE,
                                                        rundir.DENSE_DENSITY_FILE)
    assert patch.EXPORT_METADATA == {"model_type": "patch"} and image.EXPORT_METADATA == {}


def test_hold_out_takes_the_fraction_or_the_datasets_own_validation_images():
    washer = data.index_mvtec(TESTDATA, "washer")
    config = RunConfig(threshold=ThresholdConfig(val_fraction=0.25))
    kept, held = runner.hold_out(washer, config)
    assert (len(kept.train_files), len(held)) == (45, 15)
    assert sorted(kept.train_files + held) == sorted(washer.train_files)
    assert kept.test_files == washer.test_files
    own = dataclasses.replace(washer, val_files=tuple(washer.test_files[:3]))
    kept, held = runner.hold_out(own, config)
    assert kept.train_files == washer.train_files and held == own.val_files
    kept, held = runner.hold_out(washer, RunConfig())  # val_fraction 0: the paper's protocol
    assert kept.train_files == washer.train_files and held == ()


def test_an_image_run_writes_the_same_records_as_before(tiny_run):
    """The keys of the files an image run writes (the release before the stages were shared
    wrote these, and the drift check's and stress test's since), and the threshold's record of
    the held-out images."""
    category = tiny_run.model_dir / "washer"
    result = json.loads((category / rundir.RESULTS_FILE).read_text())
    assert set(result) == {
        "category", "kind", "auroc", "auroc_per_defect", "num_test_per_defect",
        "num_test_normal", "num_test_anomalous", "num_train", "num_validation", "threshold",
        "test_at_threshold", "train_score_stats", "train_steps", "train_seconds_this_run",
        "final_train_metrics", "learning", "export_path", "drift", "simulated_drift",
        "robustness"}
    record = json.loads((category / rundir.THRESHOLD_FILE).read_text())
    assert set(record) == {"normal_method", "normal_threshold", "normal_scores",
                           "normal_files", "threshold"}
    assert record["threshold"] == result["threshold"] == record["normal_threshold"]
    assert len(record["normal_scores"]) == result["num_validation"] == 15
    export = pathlib.Path(result["export_path"])
    meta = json.loads((export / "assets.extra" / "cutpaste.json").read_text())
    assert set(meta) == {"name", "version", "image_size", "feature", "signatures",
                         "anomaly_map", "threshold", "cutpaste_tf_version", "config",
                         "threshold_info", "drift_reference"}
    assert meta["threshold_info"] == result["threshold"]


def test_run_category_keeps_its_signature():
    """launch.train, launch.experiment and the accelerator check call it so."""
    import inspect

    params = list(inspect.signature(runner.run_category).parameters)
    assert params == ["data", "config", "model_dir", "export_dir", "export_version", "verbose",
                      "strategy", "validation", "progress_every_s"]


def test_restored_names_the_missing_checkpoint_folder_and_restores_a_saved_one(tmp_path):
    model = keras.Sequential([keras.Input([3]), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=f"no checkpoint under {tmp_path / 'checkpoints'}"):
        build.restored(model, str(tmp_path))
    saved = model.get_weights()
    tf.train.Checkpoint(model=model).save(str(tmp_path / "checkpoints" / "ckpt"))
    model.set_weights([np.zeros_like(w) for w in saved])
    assert build.restored(model, str(tmp_path)) is model
    for got, want in zip(model.get_weights(), saved):
        np.testing.assert_array_equal(got, want)


def test_the_start_line_names_the_device_precision_and_xla():
    from cutpaste_tf import devices
    from cutpaste_tf.config import TrainConfig

    strategy = tf.distribute.get_strategy()
    config = RunConfig(train=TrainConfig(jit_compile=True, precision="mixed_bfloat16"))
    assert runner.compute_phrase(config, strategy) == (
        f"{devices.device_summary(strategy)}, 1 replica, mixed_bfloat16, XLA on")
    assert runner.compute_phrase(RunConfig(), strategy).endswith(", 1 replica, float32, XLA off")


def test_end_lines_give_aurocs_in_percent_as_the_tables_do():
    from cutpaste_tf.evaluation.threshold import Threshold

    cut = Threshold(36.39, "validation_quantile")
    stuck = {"learned": False, "chance": 0.5, "margin": 0.05, "quarter_accuracy": 0.5,
             "quarter_step": 1, "final_accuracy": 0.5, "final_step": 4}
    line = image.end_line("washer", {"auroc": 0.88541, "learning": stuck}, cut)
    assert line.startswith("[washer] image AUROC 88.5%; threshold 36.39 (validation_quantile); "
                           "PROXY TASK NOT LEARNED: training accuracy 0.500 at step 1")
    assert image.end_line("washer", {"auroc": 0.9, "pixel_auroc": 0.8123,
                                     "gradcam_layer": "layer3", "learning": None}, cut) == (
        "[washer] image AUROC 90.0%, GradCAM (layer3) pixel AUROC 81.2%; threshold 36.39 "
        "(validation_quantile)")
    assert patch.end_line("washer", {"auroc": 0.969, "pixel_auroc": 0.9561, "aupro": 0.8049},
                          cut) == ("[washer] image AUROC 96.9%, pixel AUROC 95.6%, AU-PRO 80.5%")
