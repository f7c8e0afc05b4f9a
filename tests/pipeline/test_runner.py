"""cutpaste_tf/pipeline/runner.py: the per-defect-type table of results.md, and model dirs of older runs."""

import csv
import json

import pytest

from cutpaste_tf.config import RunConfig, TrainConfig
from cutpaste_tf.pipeline import runner
from cutpaste_tf.reporting import report


def _result(per_defect, counts=None, pixel=None):
    result = {"auroc_per_defect": per_defect}
    if counts is not None:
        result["num_test_per_defect"] = counts
    if pixel is not None:
        result["pixel_auroc_per_defect"] = pixel
    return result


def test_defect_table_rows_order_and_columns():
    results = {
        "zz_parts": _result({"structural_anomalies": 0.75, "logical_anomalies": 0.625},
                            {"structural_anomalies": 90, "logical_anomalies": 81}),
        "screw": _result({"thread_top": 0.9}, {"thread_top": 23}),
        "bottle": _result({"contamination": 1.0, "broken_large": 0.95},
                          {"contamination": 21, "broken_large": 20}),
    }
    md = runner.defect_table(results)
    assert md.splitlines()[:4] == [
        "### Image AUROC (%) per defect type", "",
        "| Category | Defect type | Images | AUROC % |", "| --- | --- | ---: | ---: |"]
    # The paper's MVTec order (bottle before screw), then other categories; defects by name.
    assert md.splitlines()[4:] == [
        "| bottle | broken large | 20 | 95.0 |",
        "| bottle | contamination | 21 | 100.0 |",
        "| screw | thread top | 23 | 90.0 |",
        "| zz parts | logical anomalies | 81 | 62.5 |",
        "| zz parts | structural anomalies | 90 | 75.0 |"]
    assert "<td>logical anomalies</td><td>81</td><td>62.5</td>" in report.markdown_to_html(md)


def test_defect_table_pixel_column_only_when_present():
    results = {"bottle": _result({"a": 0.5, "b": 0.8}, {"a": 2, "b": 3}, pixel={"a": 0.875}),
               "cable": _result({"c": 0.6}, {"c": 1})}
    lines = runner.defect_table(results).splitlines()
    assert lines[2] == "| Category | Defect type | Images | AUROC % | Pixel AUROC % |"
    assert lines[4:] == ["| bottle | a | 2 | 50.0 | 87.5 |", "| bottle | b | 3 | 80.0 | — |",
                         "| cable | c | 1 | 60.0 | — |"]


def test_defect_table_left_out_when_every_category_has_one_type():
    assert runner.defect_table({"elpv_mono": _result({"defective": 0.8}, {"defective": 9}),
                                "elpv_poly": _result({"defective": 0.7}, {"defective": 5})}) == ""
    assert runner.defect_table({"washer": {"auroc": 0.9}}) == ""  # no per-defect results


def test_summary_counts_defects_from_scores_csv_of_older_results(tmp_path):
    (tmp_path / "washer").mkdir()
    (tmp_path / "washer" / "results.json").write_text(json.dumps({
        "category": "washer", "kind": "object", "auroc": 0.9,
        "auroc_per_defect": {"scratch": 0.8, "stain": 1.0}}))
    with open(tmp_path / "washer" / "scores.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "defect", "score"])
        writer.writerows([["g", 0, "good", 0.1], ["s0", 1, "scratch", 0.5],
                          ["s1", 1, "scratch", 0.2], ["t", 1, "stain", 0.9]])
    md = runner.summarize_run(str(tmp_path), "cutpaste")
    assert "| washer | 90.0 |" in md
    assert md.index("### Image AUROC (%) per defect type") > md.index("| washer | 90.0 |")
    assert "| washer | scratch | 2 | 80.0 |" in md and "| washer | stain | 1 | 100.0 |" in md
    assert "per defect type" in (tmp_path / "results.md").read_text()


@pytest.mark.parametrize("size, resumes", [((256, 256), True), ((128, 128), False)])
def test_a_model_dir_from_when_scars_scaled_from_256_resumes_only_where_that_is_the_same(
        tmp_path, size, resumes):
    config = RunConfig(train=TrainConfig(image_size=size))
    runner.check_model_dir(str(tmp_path), config)
    written = json.loads((tmp_path / runner.CONFIG_FILE).read_text())
    assert written["train"]["augment"]["scar_reference_size"] == 0
    written["train"]["augment"]["scar_reference_size"] = 256  # the previous default
    (tmp_path / runner.CONFIG_FILE).write_text(json.dumps(written))
    if resumes:  # at 256x256 both draw the same scars
        runner.check_model_dir(str(tmp_path), config)
    else:
        with pytest.raises(ValueError, match=r"different settings \(train.augment.scar_reference"):
            runner.check_model_dir(str(tmp_path), config)
