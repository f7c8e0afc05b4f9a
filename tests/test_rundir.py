"""cutpaste_tf/rundir.py: the model-dir layout, config.json (migration of older runs,
refusal of other runs), threshold.json in both of its written forms, and a finished run loaded
back; the categories an analysis may take and the results it adds to."""

import csv
import dataclasses
import json
import os

import numpy as np
import pytest

from cutpaste_tf import __version__, rundir
from cutpaste_tf import config as config_lib
from cutpaste_tf.config import (DensityConfig, LocalizationConfig, ModelConfig, RobustnessConfig,
                                RunConfig, TrainConfig)
from cutpaste_tf.evaluation import evaluate
from cutpaste_tf.evaluation import threshold as th
from cutpaste_tf.pipeline import trained


def _write_config(model_dir, config: RunConfig) -> dict:
    """check_model_dir on a new dir: writes config.json; returns what it holds."""
    rundir.check_model_dir(str(model_dir), config)
    return json.loads((model_dir / rundir.CONFIG_FILE).read_text())


def _rewrite(model_dir, written: dict) -> None:
    (model_dir / rundir.CONFIG_FILE).write_text(json.dumps(written))


def test_layout_names_every_file_a_finished_run_holds(tiny_run):
    model_dir = tiny_run.model_dir
    assert sorted(os.listdir(model_dir)) == sorted([
        rundir.CONFIG_FILE, rundir.FLAGS_FILE, rundir.RESULTS_FILE, rundir.RESULTS_TABLE,
        rundir.REPORT_FILE, rundir.EXPORT_DIR, "washer"])
    category = rundir.category_dir(str(model_dir), "washer")
    assert sorted(os.listdir(category)) == sorted([
        rundir.CHECKPOINT_DIR, os.path.dirname(rundir.LOG_DIR), rundir.TRAIN_CURVE_FILE,
        rundir.DENSITY_FILE, rundir.THRESHOLD_FILE, rundir.SCORES_FILE, rundir.RESULTS_FILE,
        rundir.DRIFT_REFERENCE_FILE, rundir.ROBUSTNESS_FILE])
    assert os.path.isdir(os.path.join(category, rundir.LOG_DIR))
    export = rundir.default_export_dir(str(model_dir))
    assert os.path.exists(os.path.join(export, "washer", "1", "saved_model.pb"))


def test_a_finished_run_loads_and_scores_as_it_did(tiny_run):
    model_dir = str(tiny_run.model_dir)
    config = rundir.load_run_config(model_dir)
    assert config.train.image_size == (32, 32) and config.model.head_widths == (16,)
    assert rundir.trained_categories(model_dir) == ["washer"]
    assert rundir.trained_categories(model_dir, rundir.DENSE_DENSITY_FILE) == []
    assert list(rundir.collect_results(model_dir)) == ["washer"]
    model, density = trained.load_trained(model_dir, "washer", config)
    with open(os.path.join(model_dir, "washer", rundir.SCORES_FILE)) as f:
        rows = list(csv.DictReader(f))
    scores = evaluate.score_images(model, density, [r["path"] for r in rows],
                                   config.train.image_size, config.density.feature)
    np.testing.assert_allclose(scores, [float(r["score"]) for r in rows], rtol=1e-5)
    with pytest.raises(ValueError, match="no trained model for category 'fabric'.*washer"):
        trained.load_trained(model_dir, "fabric", config)


def test_a_dir_without_config_json_is_not_a_run(tmp_path):
    with pytest.raises(ValueError, match=f"model_dir={tmp_path} has no config.json; is it a "
                                         "launch.train model dir"):
        rundir.load_run_config(str(tmp_path))
    with pytest.raises(ValueError, match="threshold.json is missing"):
        rundir.read_threshold(str(tmp_path))


def test_a_config_from_before_every_migration_resumes(tmp_path):
    """A config.json that lacks every field a migration step fills in, at 256x256 with the old
    scar reference: each step restores what such a run did, so it is this run's config."""
    config = RunConfig(model=ModelConfig(classifier_init="glorot_uniform"),
                       localization=LocalizationConfig(gradcam_layer="layer3"))
    written = _write_config(tmp_path, config)
    del written["threshold"], written["mask_threshold"], written["model"]["classifier_init"]
    for key in ("head_epochs", "head_learning_rate", "freeze_batchnorm"):
        del written["train"][key]
    del written["localization"]["gradcam_layer"]
    del written["train"]["warmup_steps"], written["model"]["head_batchnorm"]
    del written["model"]["head_init"], written["model"]["head_embedding"]
    del written["model"]["input_standardization"], written["robustness"]
    del written["density"]["augment_copies"], written["density"]["augment_jitter"]
    written["train"]["augment"]["scar_reference_size"] = 256
    for section, before, now in rundir.RENAMED_FIELDS:
        written[section][before] = written[section].pop(now)
    _rewrite(tmp_path, written)
    rundir.check_model_dir(str(tmp_path), config)  # resumes
    assert [name for name, _ in rundir.MIGRATIONS] == [
        "threshold settings", "two-stage training", "classifier initialisation",
        "mask threshold", "GradCAM layer", "scar sizes in pixels", "fields named as their flags",
        "warm-up and head batch norm", "head initialisation",
        "head embedding layer", "drift options"]
    del written[rundir.VERSION_KEY]
    migrated = rundir.migrate(written, config)
    assert migrated == json.loads(config_lib.to_json(config))


def test_migrations_fill_in_only_what_is_missing(tmp_path):
    """A field a run recorded is never overwritten: a run with the other choice is refused."""
    config = RunConfig()  # classifier_init "zeros"
    written = _write_config(tmp_path, config)
    del written["model"]["classifier_init"]  # from before the choice: Keras' glorot_uniform
    _rewrite(tmp_path, written)
    with pytest.raises(ValueError, match=r"different settings \(model.classifier_init\)"):
        rundir.check_model_dir(str(tmp_path), config)
    recorded = {"model": {"classifier_init": "zeros"}, "mask_threshold": 0.3}
    assert rundir.migrate(recorded, config)["mask_threshold"] == 0.3
    assert recorded["model"]["classifier_init"] == "zeros"


def test_the_stress_tests_settings_never_stop_a_resume(tmp_path):
    """They change nothing that was trained: a rerun with other shifts resumes; the options
    that do change training (input standardisation, the density's copies) are refused."""
    written = RunConfig()
    _write_config(tmp_path, written)
    other = dataclasses.replace(written, robustness=RobustnessConfig(
        stress_test=False, shifts="photometric", max_images=50))
    rundir.check_model_dir(str(tmp_path), other)  # resumes
    for change, name in [({"model": ModelConfig(input_standardization=True)},
                          "model.input_standardization"),
                         ({"density": DensityConfig(augment_copies=4)}, "density.augment_copies")]:
        with pytest.raises(ValueError, match=rf"different settings \({name}\)"):
            rundir.check_model_dir(str(tmp_path), dataclasses.replace(written, **change))


@pytest.mark.parametrize("change, message", [
    ({"train": TrainConfig(learning_rate=0.1)},
     r"different settings \(train.learning_rate\): train.learning_rate was 0.03, now 0.1;"),
    ({"model": ModelConfig(backbone="efficientnet_b4")},
     "holds a 'resnet18' model, this run asks for backbone 'efficientnet_b4'"),
])
def test_a_different_run_is_refused_unless_overwriting(tmp_path, change, message):
    _write_config(tmp_path, RunConfig())
    other = RunConfig(**change)
    with pytest.raises(ValueError, match=message):
        rundir.check_model_dir(str(tmp_path), other)
    rundir.check_model_dir(str(tmp_path), other, overwrite=True)
    written = json.loads((tmp_path / rundir.CONFIG_FILE).read_text())
    assert written[rundir.VERSION_KEY] == __version__
    assert config_lib.from_dict(RunConfig, {k: v for k, v in written.items()
                                            if k != rundir.VERSION_KEY}) == other


@pytest.mark.parametrize("size, resumes", [((256, 256), True), ((128, 128), False)])
def test_a_model_dir_from_when_scars_scaled_from_256_resumes_only_where_that_is_the_same(
        tmp_path, size, resumes):
    config = RunConfig(train=TrainConfig(image_size=size))
    written = _write_config(tmp_path, config)
    assert written["train"]["augment"]["scar_reference_size"] == 0
    written["train"]["augment"]["scar_reference_size"] = 256  # the previous default
    _rewrite(tmp_path, written)
    if resumes:  # at 256x256 both draw the same scars
        rundir.check_model_dir(str(tmp_path), config)
    else:
        with pytest.raises(ValueError, match=r"different settings \(train.augment.scar_reference"
                                             r"_size\): .* was 256, now 0;"):
            rundir.check_model_dir(str(tmp_path), config)


def test_a_model_dir_from_before_the_gradcam_layer_choice_resumes(tmp_path):
    config = RunConfig(localization=LocalizationConfig(gradcam_layer="layer3"))
    written = _write_config(tmp_path, config)
    assert written["localization"]["gradcam_layer"] == "layer3"
    del written["localization"]["gradcam_layer"]
    _rewrite(tmp_path, written)
    rundir.check_model_dir(str(tmp_path), config)  # written before the choice: resumes


# threshold.json as the image runner wrote it (held-out quantile, then a labelled F1
# threshold) and as the patch runner wrote it (training quantile): one schema since.
_CUT = {"value": 2.0, "method": "validation_quantile", "quantile": 0.5,
        "achieved_quantile": 0.5, "num_images": 3, "note": ""}
_IMAGE_RECORD = {
    "normal_method": "validation_quantile", "normal_threshold": _CUT,
    "normal_scores": [1.0, 2.0, 3.0], "normal_files": ["a.png", "b.png", "c.png"],
    "labelled_files": ["g.png", "d.png"], "labelled_labels": [0, 1],
    "labelled_scores": [1.5, 4.0],
    "threshold": {"value": 2.75, "method": "labelled_f1", "quantile": None,
                  "achieved_quantile": None, "num_images": 2,
                  "note": "F1 1.0000 on the labelled validation images"}}
_PATCH_RECORD = {
    "normal_method": "training_quantile", "normal_threshold": {**_CUT,
                                                              "method": "training_quantile"},
    "threshold": {**_CUT, "method": "training_quantile"},
    "normal_scores": [1.0, 2.0, 3.0], "normal_files": []}


def test_the_requested_categories_must_be_trained(tmp_path):
    for name, density in (("washer", rundir.DENSITY_FILE), ("fabric", rundir.DENSITY_FILE),
                          ("grid", rundir.DENSE_DENSITY_FILE)):
        (tmp_path / name).mkdir()
        (tmp_path / name / density).write_bytes(b"")
    (tmp_path / "bottle").mkdir()  # not trained: no density
    model_dir = str(tmp_path)
    assert rundir.requested_categories(model_dir, ["all"], rundir.DENSITY_FILE) == ["fabric",
                                                                                "washer"]
    assert rundir.requested_categories(model_dir, [], rundir.DENSE_DENSITY_FILE) == ["grid"]
    assert rundir.requested_categories(model_dir, ["washer"], rundir.DENSITY_FILE) == ["washer"]
    with pytest.raises(ValueError, match=r"no trained model for bottle in model_dir=.* "
                                         r"\(trained: fabric, washer\)"):
        rundir.requested_categories(model_dir, ["washer", "bottle"], rundir.DENSITY_FILE)
    with pytest.raises(ValueError, match=r"holds no trained category \(no <category>/"
                                         r"dense_density.npz\)"):
        rundir.requested_categories(str(tmp_path / "bottle"), ["all"],
                                    rundir.DENSE_DENSITY_FILE)


def test_an_analysis_adds_to_the_category_results_of_earlier_invocations(tmp_path):
    path = tmp_path / "validation.json"
    assert rundir.read_category_results(str(path)) == {}
    path.write_text(json.dumps({"task": "3way", "categories": {"poly": {"auroc": {"all": 0.6}}}}))
    assert rundir.read_category_results(str(path)) == {"poly": {"auroc": {"all": 0.6}}}
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="validation.json is not a validation.json this "
                                         "launcher wrote; move it away"):
        rundir.read_category_results(str(path))


@pytest.mark.parametrize("record", [_IMAGE_RECORD, _PATCH_RECORD], ids=["image", "patch"])
def test_both_written_threshold_forms_load(tmp_path, record):
    rundir.write_threshold(str(tmp_path), record)
    loaded = rundir.read_threshold(str(tmp_path))
    assert loaded == record
    assert th.from_record(loaded).to_dict() == record["threshold"]  # the stored one
    manual = th.from_record(loaded, value=7.0)
    assert (manual.value, manual.method) == (7.0, "manual")
    redone = th.from_record(loaded, quantile=0.75)  # of the stored normal scores
    assert (redone.value, redone.method) == (3.0, record["normal_method"])
    # What the runner writes now has the same keys.
    normal = th.Threshold(**record["normal_threshold"])
    labelled = (None if "labelled_files" not in record else
                (record["labelled_files"], record["labelled_labels"], record["labelled_scores"]))
    rebuilt = th.record(normal, np.array(record["normal_scores"], np.float32),
                        record["normal_files"], th.Threshold(**record["threshold"]), labelled)
    assert rebuilt == record
