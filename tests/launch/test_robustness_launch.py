"""launch.robustness on a finished run: other shifts, labelled defects, out-of-fold normals,
and its errors."""

import json

from launch import robustness as launcher


def test_reruns_the_stress_test_with_other_shifts(tiny_run, tmp_path, run_launcher, capsys):
    model_dir = tiny_run.copy(tmp_path)
    code = run_launcher(launcher, f"--model_dir={model_dir}",
                        "--stress_shifts=brightness:-0.1,blur:1")
    out = capsys.readouterr().out
    assert code == 0, out
    result = json.loads((model_dir / "washer" / "robustness.json").read_text())
    assert [r["shift"] for r in result["rows"]] == ["none", "brightness -10%", "blur σ=1 px"]
    assert json.loads((model_dir / "washer" / "results.json").read_text())["robustness"] == result
    assert "#### washer: drift stress test (15 held-out normals, 60 synthetic anomalies)" in out
    assert "| blur σ=1 px |" in out and "| blur σ=1 px |" not in (
        tiny_run.model_dir / "results.md").read_text()
    assert "<td>blur σ=1 px</td>" in (model_dir / "report.html").read_text()


def test_labelled_defects_replace_the_synthetic_anomalies(tiny_run, tmp_path, run_launcher,
                                                          capsys):
    model_dir = tiny_run.copy(tmp_path)
    code = run_launcher(launcher, f"--model_dir={model_dir}", "--stress_shifts=photometric",
                        "--validation_dir=testdata/washer/test")
    assert code == 0, capsys.readouterr().err
    result = json.loads((model_dir / "washer" / "robustness.json").read_text())
    assert result["anomalies"] == "labelled defects" and result["num_anomalies"] == 24
    assert not any(r["kind"] in ("translate", "rotate") for r in result["rows"])


def test_a_run_without_held_out_images_needs_its_data(dark_run, tmp_path, run_launcher, capsys):
    model_dir, data, _ = dark_run
    code = run_launcher(launcher, f"--model_dir={model_dir}")
    assert code == 2
    assert "needs the dataset (--data_dir) to list them" in capsys.readouterr().err
    code = run_launcher(launcher, f"--model_dir={model_dir}", f"--data_dir={data}",
                        "--stress_shifts=contrast:0.1")
    assert code == 0
    result = json.loads((model_dir / "washer" / "robustness.json").read_text())
    assert result["normals"] == "out-of-fold" and len(result["rows"]) == 2


def test_bad_flags_are_named(tiny_run, run_launcher, capsys):
    assert run_launcher(launcher, "--stress_shifts=glare:1",
                        f"--model_dir={tiny_run.model_dir}") == 2
    err = capsys.readouterr().err
    assert "--stress_shifts=glare:1" in err and "unknown shift 'glare'" in err
    assert run_launcher(launcher) == 2
    assert "--model_dir is required" in capsys.readouterr().err
