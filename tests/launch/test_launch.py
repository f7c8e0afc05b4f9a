"""End to end: python -m launch.train on the shipped testdata (tests/conftest.py's tiny_run),
resume, a kill, a remote filesystem; launch.export on a finished run; and the early errors of
both launchers, run in this process."""

import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from helpers import CPU_ENV, ROOT, TINY_TRAIN, run_module

from launch import export as export_launcher
from launch import train as train_launcher

# --------------------------------------------------------------------- the quickstart path


def test_writes_results_table_config_and_export(tiny_run):
    model_dir = tiny_run.model_dir
    results = json.loads((model_dir / "results.json").read_text())
    washer = results["categories"]["washer"]
    assert 0.0 <= washer["auroc"] <= 1.0 and washer["kind"] == "object"
    assert set(washer["auroc_per_defect"]) == {"missing", "scratch", "stain"}
    assert washer["train_steps"] == 3
    table = (model_dir / "results.md").read_text()
    assert "| washer |" in table and "### Image AUROC (%) per defect type" in table
    assert "| washer | scratch | 8 |" in table  # testdata: eight scratch images
    config = json.loads((model_dir / "config.json").read_text())
    assert config["train"]["image_size"] == [32, 32] and config["model"]["head_widths"] == [16]
    flags_txt = (model_dir / "flags.txt").read_text()
    assert "--image_size=32" in flags_txt and "--category=washer" in flags_txt
    for absl_flag in ("--test_tmpdir", "--verbosity", "--logtostderr", "--helpfull"):
        assert absl_flag not in flags_txt, absl_flag  # only the project's flags
    for name in ("density.npz", "scores.csv", "results.json"):
        assert (model_dir / "washer" / name).exists(), name
    assert (model_dir / "export" / "washer" / "1" / "saved_model.pb").exists()
    assert "Image AUROC" in tiny_run.stdout and "Results:" in tiny_run.stdout
    assert f"Report: {model_dir / 'report.html'}" in tiny_run.stdout  # matplotlib: test extra
    assert "data:image/png;base64," in (model_dir / "report.html").read_text()


def test_threshold_from_held_out_normal_images(tiny_run):
    model_dir = tiny_run.model_dir
    washer = json.loads((model_dir / "results.json").read_text())["categories"]["washer"]
    assert washer["num_validation"] == 15 and washer["num_train"] == 45
    cut = washer["threshold"]
    assert cut["method"] == "validation_quantile" and cut["num_images"] == 15
    assert cut["quantile"] == 0.95 and "need 19 for 0.95" in cut["note"]
    record = json.loads((model_dir / "washer" / "threshold.json").read_text())
    assert cut["value"] == max(record["normal_scores"])  # 15 images: the largest score
    assert len(record["normal_files"]) == 15
    assert set(washer["test_at_threshold"]) == {"false_positive_rate", "recall", "precision",
                                                "f1"}
    meta = json.loads((model_dir / "export" / "washer" / "1" / "assets.extra" /
                       "cutpaste.json").read_text())
    assert meta["threshold"] == pytest.approx(cut["value"])
    assert meta["threshold_info"]["method"] == "validation_quantile"


def test_rerun_resumes_without_training_again(tiny_run, tmp_path):
    model_dir = tiny_run.copy(tmp_path)
    before = sorted(os.listdir(model_dir / "washer" / "checkpoints"))
    result = run_module("launch.train", *TINY_TRAIN, f"--model_dir={model_dir}")
    assert result.returncode == 0, result.stderr[-4000:]
    assert sorted(os.listdir(model_dir / "washer" / "checkpoints")) == before
    assert os.listdir(model_dir / "export" / "washer") == ["1"]


def test_survives_sigkill_and_resumes_from_last_checkpoint(tmp_path):
    model_dir = tmp_path / "model"
    args = [*TINY_TRAIN, "--steps_per_epoch=16", "--checkpoint_every=1", "--export_dir=none",
            f"--model_dir={model_dir}"]
    proc = subprocess.Popen([sys.executable, "-m", "launch.train", *args], cwd=ROOT, env=CPU_ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt_dir = model_dir / "washer" / "checkpoints"
    deadline = time.time() + 300  # guards against a hang only
    while time.time() < deadline and proc.poll() is None:
        if (ckpt_dir / "ckpt-3.index").exists():
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # The newest checkpoint that the index file names: checkpoint 3 may be half written (its
    # files exist before the index points at it), in which case it is not used.
    killed_at = tf.train.latest_checkpoint(str(ckpt_dir))
    assert killed_at, "the run was killed before its first checkpoint"
    killed_step = int(killed_at.rsplit("-", 1)[1])
    assert 2 <= killed_step < 16, "the run was not killed mid-training"

    result = run_module("launch.train", *args)
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"Resuming from step {killed_step} of 16" in result.stdout
    results = json.loads((model_dir / "washer" / "results.json").read_text())
    assert results["train_steps"] == 16 and results["final_train_metrics"]["step"] == 16
    state = tf.train.get_checkpoint_state(str(ckpt_dir))
    assert state.model_checkpoint_path.endswith("ckpt-16")
    for path in state.all_model_checkpoint_paths:  # every kept checkpoint is whole
        reader = tf.train.load_checkpoint(path)
        assert reader.get_variable_to_shape_map()


def test_runs_on_a_remote_filesystem():
    # Every read and write goes through tf.io.gfile: the whole run works on TensorFlow's
    # in-memory filesystem (what gs:// paths take on Cloud TPU), which exists only inside
    # one process, so the data is copied there and the launcher runs in that process.
    script = f"""
import json, os, sys
import tensorflow as tf
from absl import flags
from launch import train as launcher

def copy_tree(src, dst):
    for root, _, names in tf.io.gfile.walk(src):
        target = dst + root[len(src):]
        tf.io.gfile.makedirs(target)
        for name in names:
            tf.io.gfile.copy(os.path.join(root, name), os.path.join(target, name))

copy_tree({str(ROOT / 'testdata')!r}, "ram://data")
argv = ["train"] + {TINY_TRAIN!r} + ["--data_dir=ram://data", "--model_dir=ram://runs/model"]
flags.FLAGS(argv)
launcher.main(argv[:1])
listing = sorted(p for r, _, n in tf.io.gfile.walk("ram://runs") for p in
                 [os.path.join(r, x) for x in n])
with tf.io.gfile.GFile("ram://runs/model/results.json") as f:
    results = json.load(f)
loaded = tf.saved_model.load("ram://runs/model/export/washer/1")
print("RESULT", json.dumps({{"listing": listing, "auroc": results["categories"]["washer"]["auroc"],
                             "signatures": sorted(loaded.signatures)}}))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT,
                            env={**CPU_ENV, "PYTHONPATH": str(ROOT)},
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    out = json.loads(line[len("RESULT "):])
    listing = "\n".join(out["listing"])
    for name in ("model/config.json", "model/results.json", "model/results.md",
                 "model/washer/density.npz", "model/washer/checkpoints/checkpoint",
                 "model/export/washer/1/saved_model.pb", "model/washer/logs/train"):
        assert f"ram://runs/{name}" in listing, name
    assert 0.0 <= out["auroc"] <= 1.0 and "serving_default" in out["signatures"]


@pytest.mark.parametrize("preset, expected", [(None, "1"), ("0", "0")])
def test_launchers_turn_on_onednn_unless_the_environment_says_otherwise(monkeypatch, preset,
                                                                        expected):
    import launch

    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    if preset is not None:
        monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", preset)
    importlib.reload(launch)  # what importing any launcher does first
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == expected


def test_console_output_in_a_log_file_is_plain_lines(tmp_path):
    """What `> log 2>&1` holds: the start line naming the device, a plain progress line per
    step, a start and an end line for every later stage, and no carriage return, backspace,
    colour code or TensorFlow start-up chatter."""
    env = {k: v for k, v in CPU_ENV.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user has it
    result = subprocess.run(
        [sys.executable, "-m", "launch.train", *TINY_TRAIN, "--progress", "--progress_every_s=0",
         f"--model_dir={tmp_path / 'model'}"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=600)
    log = result.stdout
    assert result.returncode == 0, log[-4000:]
    assert not re.search(r"[\r\x08\x1b]", log)
    for noise in ("cuInit", "absl::InitializeLog", "oneDNN custom operations", "cudart_stub"):
        assert noise not in log
    lines = log.splitlines()
    assert any(re.fullmatch(r"\[washer\] training cutpaste for 3 steps on 45 images \(15 held "
                            r"out to set the threshold\); CPU \(.+, \d+ cores?\), 1 replica, "
                            r"float32, XLA off", line) for line in lines), log[-4000:]
    steps = [line for line in lines if line.startswith("[washer] step ")]
    assert [s.split(" (")[0] for s in steps] == [f"[washer] step {i}/3" for i in (1, 2, 3)]
    assert all(re.fullmatch(r"\[washer\] step \d/3 \(\d+%\) loss \d+\.\d{3} acc \d\.\d\d "
                            r"\(normal \d\.\d\d / cutpaste \d\.\d\d\) \d+ views/s"
                            r"( ETA \S+)?", s) for s in steps), steps
    assert re.search(r"^\[washer\] training: done in \S+$", log, re.M)
    assert ("[washer] warning: threshold: 15 images support at most quantile 0.938; need 19 for "
            "0.95; the threshold is the highest of the 15 normal scores") in log
    for stage in ("[washer] density fit on 45 training images", "[washer] threshold",
                  "[washer] evaluation on 36 test images", "[washer] metrics",
                  "[washer] SavedModel export", "HTML report"):
        start, end = f"{stage}: started", f"{stage}: done in "
        assert start in lines and any(line.startswith(end) for line in lines), stage
        assert lines.index(start) < next(i for i, line in enumerate(lines)
                                         if line.startswith(end))


@pytest.mark.parametrize("launcher, where", [("launch.train", "--model_dir"),
                                              ("launch.experiment", "--experiment_dir")])
def test_require_accelerator_refuses_the_cpu_before_reading_data(tmp_path, launcher, where):
    out = tmp_path / "out"
    # --data_dir does not exist: the refusal comes before the dataset is looked at.
    result = run_module(launcher, *TINY_TRAIN, f"{where}={out}", "--data_dir=/no/such/dir",
                        "--require_accelerator")
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert errors[0].startswith("error: --require_accelerator: TensorFlow sees no GPU or TPU "
                                "here, only the CPU (")
    assert 'pip install "tensorflow[and-cuda]"' in errors[0]
    assert not out.exists()


# ------------------------------------------------------- launch.train's errors, in process


def test_other_settings_in_the_same_model_dir_are_refused(tiny_run, tmp_path, run_launcher,
                                                          capsys):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    shutil.copy(tiny_run.model_dir / "config.json", model_dir)
    config = (model_dir / "config.json").read_text()
    status = run_launcher(train_launcher, *TINY_TRAIN, f"--model_dir={model_dir}",
                          "--learning_rate=0.1")
    err = capsys.readouterr().err
    assert status == 2, err[-2000:]
    assert "different settings (train.learning_rate)" in err and "--overwrite" in err
    assert os.listdir(model_dir) == ["config.json"]  # untouched: nothing trained or rewritten
    assert (model_dir / "config.json").read_text() == config


@pytest.mark.parametrize("args, message", [
    (["--data_dir=/no/such/dir"], "data directory '/no/such/dir' does not exist"),
    (["--category=bottle"], "'bottle' not found in data directory 'testdata'; available: fabric, washer"),
    (["--batch_size=51"], "batch_size (51) must be a positive multiple of the 2 views"),
    (["--image_size=64,64,3"], "--image_size takes one value or height,width"),
    (["--area_ratio=0.2"], "--area_ratio needs 2 comma-separated values"),
    (["--val_fraction=0.99"], "--val_fraction=0.99 of 60 training images leaves 1 to train on"),
    (["--backbone=efficientnet_b4", "--backbone_weights=/no/such.weights.h5"],
     "--backbone_weights=/no/such.weights.h5: no such file"),
])
def test_bad_input_fails_before_anything_is_written(tmp_path, run_launcher, capsys, args,
                                                    message):
    model_dir = tmp_path / "model"
    status = run_launcher(train_launcher, *TINY_TRAIN, f"--model_dir={model_dir}", *args)
    err = capsys.readouterr().err
    assert status == 2, err[-2000:]
    assert message in err
    assert not model_dir.exists()  # stopped before the model dir, a model or a training step


def test_empty_training_folder_is_named(tmp_path, run_launcher, capsys):
    data_dir = tmp_path / "data"
    shutil.copytree(ROOT / "testdata" / "washer", data_dir / "washer")
    for f in (data_dir / "washer" / "train" / "good").iterdir():
        f.unlink()
    model_dir = tmp_path / "model"
    status = run_launcher(train_launcher, *TINY_TRAIN, f"--data_dir={data_dir}",
                          f"--model_dir={model_dir}")
    assert status == 2
    assert "train/good' holds no images" in capsys.readouterr().err
    assert not model_dir.exists()


# ------------------------------------------------------------------------------ launch.export


def test_threshold_override_reexports_without_training(tiny_run, tmp_path, run_launcher,
                                                       capsys):
    model_dir = tiny_run.copy(tmp_path)
    checkpoints = sorted(os.listdir(model_dir / "washer" / "checkpoints"))
    status = run_launcher(export_launcher, f"--model_dir={model_dir}", "--category=washer",
                          "--threshold=12.5")
    out, err = capsys.readouterr()
    assert status == 0, err[-4000:]
    assert "threshold 12.5 (manual)" in out
    assert sorted(os.listdir(model_dir / "export" / "washer")) == ["1", "2"]
    assert sorted(os.listdir(model_dir / "washer" / "checkpoints")) == checkpoints
    results = json.loads((model_dir / "results.json").read_text())["categories"]["washer"]
    assert results["threshold"]["value"] == 12.5 and results["threshold"]["method"] == "manual"
    record = json.loads((model_dir / "washer" / "threshold.json").read_text())
    assert record["threshold"]["value"] == 12.5
    image = tf.io.read_file(str(ROOT / "testdata" / "washer" / "test" / "stain" / "000.png"))
    old, new = (tf.saved_model.load(str(model_dir / "export" / "washer" / v))
                .signatures["serving_default"](image_bytes=image[None]) for v in ("1", "2"))
    assert float(new["threshold"][0]) == 12.5
    np.testing.assert_allclose(new["score"].numpy(), old["score"].numpy(), rtol=1e-6)
    assert bool(new["is_anomaly"][0]) == (float(new["score"][0]) > 12.5)


def test_export_refuses_both_threshold_flags(tiny_run, run_launcher, capsys):
    status = run_launcher(export_launcher, f"--model_dir={tiny_run.model_dir}", "--threshold=1",
                          "--threshold_quantile=0.9")
    assert status == 2
    assert "give --threshold or --threshold_quantile, not both" in capsys.readouterr().err
    assert os.listdir(tiny_run.model_dir / "export" / "washer") == ["1"]
