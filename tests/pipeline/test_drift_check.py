"""Drift at evaluation and at prediction: a run whose test normals were captured darker warns in
one line (and its results, report and predictions say so); a clean run stays silent."""

import json

import pytest
from helpers import ROOT, run_module

from cutpaste_tf.ops import shifts
from cutpaste_tf.serving import savedmodel

DARKER = 0.8  # conftest's dark_run: its test normals' brightness against the training images'


def test_evaluation_warns_in_one_line_when_the_test_normals_drift(dark_run):
    model_dir, _, result = dark_run
    lines = [line for line in result.stderr.splitlines() if "warning: the test normals" in line]
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith("[washer] warning: ")
    assert "differ from the training images (mean grey" in lines[0]
    assert lines[0].endswith("AUROC may measure the drift, not the defects")
    category = json.loads((model_dir / "washer" / "results.json").read_text())
    assert category["drift"]["test_normals"]["drifted"]
    assert category["drift"]["reference"] == "out_of_fold_quantile"
    grey = category["drift"]["test_normals"]["statistics"]["mean_grey"]
    assert grey["median"] == pytest.approx(DARKER * grey["reference_median"], rel=0.05)
    run = json.loads((model_dir / "results.json").read_text())
    assert run["drift_warnings"]["washer"] == lines[0].removeprefix("[washer] ")
    table = (model_dir / "results.md").read_text()
    assert "| washer |" in table and "⚠ yes" in table
    assert "The test normals differ from the training images" in table
    assert "The test images drifted from the training images." in (
        model_dir / "report.html").read_text()


def test_a_clean_run_is_silent_and_records_its_check(tiny_run):
    assert "warning: the test normals" not in tiny_run.stderr
    result = json.loads((tiny_run.model_dir / "washer" / "results.json").read_text())
    assert result["drift"]["test_normals"]["drifted"] is False
    assert result["drift"]["warning"] == ""
    assert result["drift"]["reference"] == "validation_quantile"
    assert 0.0 <= result["simulated_drift"]["auroc"] <= 1.0
    assert result["simulated_drift"]["shift"] == shifts.SIMULATED_DRIFT.name
    assert json.loads((tiny_run.model_dir / "results.json").read_text())["drift_warnings"] == {}
    assert "The test images drifted" not in (tiny_run.model_dir / "report.html").read_text()


def test_the_export_carries_the_drift_reference(tiny_run):
    export = savedmodel.resolve(str(tiny_run.model_dir))
    ref = savedmodel.read_metadata(export)["drift_reference"]
    stored = json.loads((tiny_run.model_dir / "washer" / "drift_reference.json").read_text())
    assert ref["statistics"] == stored["statistics"]
    assert ref["statistics"]["mean_grey"]["num_images"] == 45  # the training images (60 - 15)
    threshold = json.loads((tiny_run.model_dir / "washer" / "threshold.json").read_text())
    assert ref["scores"]["values"] == sorted(threshold["normal_scores"])
    assert ref["threshold"] == pytest.approx(threshold["threshold"]["value"])
    assert ref["expected_share_above"] == pytest.approx(0.05)


def test_predict_warns_on_drifted_images_and_not_on_the_capture_it_knows(dark_run, tmp_path):
    model_dir, data, _ = dark_run
    dark = run_module("launch.predict", f"--model={model_dir}",
                      f"--images={data / 'washer' / 'test' / 'good'}",
                      f"--output_dir={tmp_path / 'dark'}")
    assert dark.returncode == 0, dark.stderr[-2000:]
    warning = [line for line in dark.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "these images differ from the training images" in warning[0]
    summary = json.loads((tmp_path / "dark" / "predictions.json").read_text())["summary"]
    assert summary["drift"]["drifted"] and summary["drift_warning"] == warning[0]
    same = run_module("launch.predict", f"--model={model_dir}",
                      f"--images={ROOT / 'testdata' / 'washer' / 'train' / 'good'}",
                      f"--output_dir={tmp_path / 'same'}")
    assert same.returncode == 0 and "warning:" not in same.stderr
    summary = json.loads((tmp_path / "same" / "predictions.json").read_text())["summary"]
    assert summary["drift"]["drifted"] is False and summary["drift_warning"] == ""
