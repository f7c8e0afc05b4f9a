"""The drift stress test inside a run: its figures in the category's results and files, the
run's results.md and the report; held-out normals, or out-of-fold ones without them."""

import json
import types

import numpy as np

from cutpaste_tf.config import RunConfig
from cutpaste_tf.evaluation import robustness
from cutpaste_tf.ops import shifts
from cutpaste_tf.pipeline import runner, stress


def test_a_run_stress_tests_its_held_out_normals(tiny_run):
    cdir = tiny_run.model_dir / "washer"
    result = json.loads((cdir / "results.json").read_text())["robustness"]
    assert result == json.loads((cdir / "robustness.json").read_text())
    assert result["normals"] == "held-out" and result["num_normal"] == 15
    assert result["anomalies"] == "synthetic anomalies" and result["num_anomalies"] == 60
    assert [r["shift"] for r in result["rows"]] == ["none"] + [
        s.name for s in shifts.STRESS_SHIFTS]
    for row in result["rows"]:
        assert 0.0 <= row["false_alarm_rate"] <= 1.0 and 0.0 <= row["auroc"] <= 1.0
    threshold = json.loads((cdir / "threshold.json").read_text())["threshold"]["value"]
    assert result["threshold"] == threshold
    # The clean row uses the held-out images that set the threshold: at most 1 - 0.95 (plus
    # the one image the order statistic allows with 15 of them) lie above it.
    assert result["rows"][0]["false_alarm_rate"] <= 1 / 15 + 1e-9
    line = stress.end_line(result)  # printed after the stage with --progress
    assert line.startswith("drift stress test: ±10% brightness/contrast flags up to")
    assert "worst AUROC against synthetic anomalies" in line
    table = (tiny_run.model_dir / "results.md").read_text()
    assert "### Drift: the capture shifted" in table
    report = (tiny_run.model_dir / "report.html").read_text()
    assert "<h3>Drift stress test</h3>" in report and 'alt="drift stress test"' in report
    assert "| brightness -8% |" not in report and "<td>brightness -8%</td>" in report


def test_without_held_out_images_the_normals_are_out_of_fold(dark_run):
    model_dir, _, _ = dark_run
    result = json.loads((model_dir / "washer" / "robustness.json").read_text())
    assert result["normals"] == "out-of-fold" and result["num_normal"] == 60


def test_too_few_normals_skip_the_stress_test_and_never_fail_the_run():
    """A category with one held-out image (the tiny public-layout copies) is not failed by the
    stress test: it is skipped, with why; a patch model without held-out images likewise."""
    one = robustness.Normals(np.zeros((1, 8, 8, 3), np.float32), np.zeros(1, np.int64),
                             [lambda x: np.zeros(len(x))], "held-out")
    kind = types.SimpleNamespace(stress_normals=lambda *args: one)
    result = runner.stress_test(kind, None, None, None, RunConfig(), ["a.png"], None, None, "")
    assert result == {"skipped": "1 normal image to shift; it needs 2 or more"}
    assert stress.end_line(result) == ("drift stress test skipped: 1 normal image to shift; it "
                                       "needs 2 or more")

    def refuse(*args):
        raise ValueError("the stress test of a patch model needs held-out normal images")
    kind = types.SimpleNamespace(stress_normals=refuse)
    assert "needs held-out" in runner.stress_test(kind, None, None, None, RunConfig(), [], None,
                                                  None, "")["skipped"]
