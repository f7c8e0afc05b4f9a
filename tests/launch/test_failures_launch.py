"""One category's failure costs that category alone: launch.train and launch.experiment record
it, finish the others, name it in results.json, results.md and the report, exit 1 with a
summary line, and a rerun of the same command finishes it and clears it."""

import json

import pytest
from helpers import ROOT

from cutpaste_tf.evaluation import evaluate
from cutpaste_tf.pipeline import failures
from cutpaste_tf.training import train
from launch import errors
from launch import experiment as experiment_launcher
from launch import train as train_launcher

# helpers.TINY_TRAIN on two categories, without the export and GradCAM (less to wait for).
TWO = [f"--flagfile={ROOT / 'configs' / 'quickstart.flags'}", f"--data_dir={ROOT / 'testdata'}",
       "--category=fabric,washer", "--image_size=32", "--batch_size=6", "--epochs=1",
       "--steps_per_epoch=2", "--checkpoint_every=2", "--log_every=1", "--head_widths=16",
       "--progress=false", "--gradcam=false", "--export_dir=none", "--val_fraction=0.25",
       "--decode_check=false"]


def test_train_goes_on_after_a_failed_category_and_a_rerun_clears_it(
        tmp_path, monkeypatch, run_launcher, capsys):
    launcher = train_launcher
    original = train.train

    def diverging(model, batches, config, out, *args, **kwargs):
        if out.endswith("fabric"):
            raise train.TrainingError("loss is NaN at step 2; the last good checkpoint is none")
        return original(model, batches, config, out, *args, **kwargs)

    monkeypatch.setattr(train, "train", diverging)
    model_dir = tmp_path / "model"
    assert run_launcher(launcher, *TWO, f"--model_dir={model_dir}") == 1
    err = capsys.readouterr().err
    assert ("error: [fabric] training: TrainingError: loss is NaN at step 2; the last good "
            "checkpoint is none; going on with the others") in err
    assert err.rstrip().splitlines()[-1] == (
        "1 of 2 categories failed: fabric (training: TrainingError: loss is NaN at step 2; the "
        f"last good checkpoint is none); results for the other 1 in {model_dir}/results.md")
    results = json.loads((model_dir / "results.json").read_text())
    assert list(results["categories"]) == ["washer"]  # the category after it still ran
    assert results["failed"] == {"fabric": {
        "stage": "training", "error": "TrainingError",
        "message": "loss is NaN at step 2; the last good checkpoint is none"}}
    assert "paper_differences" in results
    table = (model_dir / "results.md").read_text()
    assert "| washer |" in table and "### Failed categories" in table
    assert "| fabric | training | TrainingError: loss is NaN at step 2" in table
    page = (model_dir / "report.html").read_text()
    assert "<h4>Failed categories</h4>" in page
    assert "<td>fabric</td><td>training</td><td>TrainingError: loss is NaN" in page
    assert "Traceback" in json.loads((model_dir / "fabric" / "failed.json").read_text())[
        "traceback"]

    monkeypatch.setattr(train, "train", original)  # the cause removed: the same command again
    assert run_launcher(launcher, *TWO, f"--model_dir={model_dir}") == 0
    assert "failed" not in capsys.readouterr().err
    results = json.loads((model_dir / "results.json").read_text())
    assert sorted(results["categories"]) == ["fabric", "washer"] and results["failed"] == {}
    assert "Failed categories" not in (model_dir / "results.md").read_text()
    assert "Failed categories" not in (model_dir / "report.html").read_text()
    assert not (model_dir / "fabric" / "failed.json").exists()


def test_experiment_goes_on_after_a_failed_run_and_a_rerun_clears_it(
        tmp_path, monkeypatch, run_launcher, capsys):
    launcher = experiment_launcher
    original = evaluate.write_scores

    def full_disk(path, data, scores):
        if data.name == "washer":
            raise OSError(28, "No space left on device", path)
        return original(path, data, scores)

    monkeypatch.setattr(evaluate, "write_scores", full_disk)
    exp_dir = tmp_path / "exp"
    args = [*TWO, "--seeds=1", f"--experiment_dir={exp_dir}"]
    assert run_launcher(launcher, *args) == 1
    err = capsys.readouterr().err
    run = exp_dir / "cutpaste" / "seed_0"
    assert f"error: [{run}, washer] evaluation: OSError: [Errno 28] No space left" in err
    assert err.rstrip().splitlines()[-1].startswith(
        "1 of 2 models failed: cutpaste/seed_0 washer (evaluation: OSError: [Errno 28] No space "
        "left on device: ")
    assert err.rstrip().endswith(f"results for the other 1 in {exp_dir}/results.md")
    summary = json.loads((exp_dir / "results.json").read_text())
    (setting,) = summary["settings"]
    assert list(setting["per_category"]) == ["fabric"]
    assert [(f["seed"], f["category"], f["stage"], f["error"]) for f in setting["failed"]] == [
        (0, "washer", "evaluation", "OSError")]
    table = (exp_dir / "results.md").read_text()
    assert "### Failed runs" in table and "| cutpaste | 0 | washer | evaluation | OSError" in table
    assert "<td>washer</td><td>evaluation</td>" in (exp_dir / "report.html").read_text()
    assert json.loads((run / "results.json").read_text())["failed"]["washer"]["stage"] == \
        "evaluation"

    monkeypatch.setattr(evaluate, "write_scores", original)
    assert run_launcher(launcher, *args) == 0
    out = capsys.readouterr().out
    assert "1 finished, 1 to run" in out and "== cutpaste, seed 0, washer" in out
    summary = json.loads((exp_dir / "results.json").read_text())
    assert sorted(summary["settings"][0]["per_category"]) == ["fabric", "washer"]
    assert summary["settings"][0]["failed"] == []
    assert "Failed runs" not in (exp_dir / "results.md").read_text()
    assert json.loads((run / "results.json").read_text())["failed"] == {}


def test_a_failure_is_said_in_flag_names_and_a_likely_bug_with_its_traceback(capsys):
    def fails(error):
        try:
            with failures.stage("threshold"):
                raise error
        except Exception as e:
            return e

    failure = errors.category_failed("[pill] ", fails(ValueError("val_fraction=0.5 too large")))
    assert failure == {"stage": "threshold", "error": "ValueError",
                       "message": "val_fraction=0.5 too large"}  # recorded as raised
    assert capsys.readouterr().err == ("error: [pill] threshold: ValueError: --val_fraction=0.5 "
                                       "too large; going on with the others\n")
    errors.category_failed("[pill] ", fails(KeyError("auroc")))
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert err.endswith("error: [pill] threshold: KeyError: 'auroc'; going on with the others\n")
    errors.end_with_failures({}, 3, "r.md")  # nothing failed: returns
    with pytest.raises(SystemExit) as exit_:
        errors.end_with_failures({"pill": failure}, 3, "r.md")
    assert exit_.value.code == 1
    assert capsys.readouterr().err == (
        "1 of 3 categories failed: pill (threshold: ValueError: --val_fraction=0.5 too large); "
        "results for the other 2 in r.md\n")
