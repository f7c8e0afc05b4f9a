"""cutpaste_tf/reporting/summary.py: results.md and the run's results.json over its categories
(the per-defect-type table, older results, localisation not reported)."""

import csv
import json

from cutpaste_tf.reporting import report, summary


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
    md = summary.defect_table(results)
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
    lines = summary.defect_table(results).splitlines()
    assert lines[2] == "| Category | Defect type | Images | AUROC % | Pixel AUROC % |"
    assert lines[4:] == ["| bottle | a | 2 | 50.0 | 87.5 |", "| bottle | b | 3 | 80.0 | — |",
                         "| cable | c | 1 | 60.0 | — |"]


def test_defect_table_left_out_when_every_category_has_one_type():
    assert summary.defect_table({"elpv_mono": _result({"defective": 0.8}, {"defective": 9}),
                                "elpv_poly": _result({"defective": 0.7}, {"defective": 5})}) == ""
    assert summary.defect_table({"washer": {"auroc": 0.9}}) == ""  # no per-defect results


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
    md = summary.summarize_run(str(tmp_path), "cutpaste")
    assert "| washer | 90.0 |" in md
    assert md.index("### Image AUROC (%) per defect type") > md.index("| washer | 90.0 |")
    assert "| washer | scratch | 2 | 80.0 |" in md and "| washer | stain | 1 | 100.0 |" in md
    assert "per defect type" in (tmp_path / "results.md").read_text()


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
    table = summary.summarize_run(str(tmp_path), "cutpaste")
    assert "### Localisation (gradcam layer2), cutpaste" in table
    assert "| fabric | 80.0 |" in table and "| washer | 90.0 |" in table  # image AUROC only
    assert f"Localisation (gradcam): washer: {why}." in table
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["pixel_not_reported"] == {"washer": why}
    assert written["pixel_averages"] == {"texture": 0.8, "all": 0.8}
