"""End to end: python -m launch.train on the shipped testdata, resume, and early errors."""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY = ["--flagfile=configs/quickstart.flags", "--category=washer", "--image_size=32",
        "--batch_size=6", "--epochs=1", "--steps_per_epoch=3", "--checkpoint_every=3",
        "--log_every=1", "--head_widths=16", "--progress=false", "--val_fraction=0.25"]


def _run(*args, timeout=600, module="launch.train"):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=timeout)
    return result, time.perf_counter() - start


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("run") / "model"
    result, _ = _run(*TINY, f"--model_dir={model_dir}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return model_dir, result


def test_writes_results_table_config_and_export(tiny_run):
    model_dir, result = tiny_run
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
    assert "--image_size=32" in (model_dir / "flags.txt").read_text()
    for name in ("density.npz", "scores.csv", "results.json"):
        assert (model_dir / "washer" / name).exists(), name
    assert (model_dir / "export" / "washer" / "1" / "saved_model.pb").exists()
    assert "Image AUROC" in result.stdout and "Results:" in result.stdout
    assert f"Report: {model_dir / 'report.html'}" in result.stdout  # matplotlib: test extra
    assert "data:image/png;base64," in (model_dir / "report.html").read_text()


def test_rerun_resumes_without_training_again(tiny_run):
    model_dir, _ = tiny_run
    before = sorted(os.listdir(model_dir / "washer" / "checkpoints"))
    result, _ = _run(*TINY, f"--model_dir={model_dir}")
    assert result.returncode == 0, result.stderr[-4000:]
    assert sorted(os.listdir(model_dir / "washer" / "checkpoints")) == before
    assert os.listdir(model_dir / "export" / "washer") == ["1"]


def test_other_settings_in_the_same_model_dir_are_refused(tiny_run):
    model_dir, _ = tiny_run
    result, seconds = _run(*TINY, f"--model_dir={model_dir}", "--learning_rate=0.1")
    assert result.returncode == 2
    assert "different settings (train.learning_rate)" in result.stderr
    assert "--overwrite" in result.stderr


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
def test_bad_input_fails_fast_with_a_clear_message(tmp_path, args, message):
    model_dir = tmp_path / "model"
    result, seconds = _run(*TINY, f"--model_dir={model_dir}", *args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not model_dir.exists()  # nothing was written
    assert seconds < 60


def test_empty_training_folder_is_named(tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(ROOT / "testdata" / "washer", data_dir / "washer")
    for f in (data_dir / "washer" / "train" / "good").iterdir():
        f.unlink()
    result, _ = _run(*TINY, f"--data_dir={data_dir}", f"--model_dir={tmp_path / 'model'}")
    assert result.returncode == 2
    assert "train/good' holds no images" in result.stderr


def test_survives_sigkill_and_resumes_from_last_checkpoint(tmp_path):
    import signal

    import tensorflow as tf

    model_dir = tmp_path / "model"
    args = [*TINY, "--steps_per_epoch=16", "--checkpoint_every=1", "--export_dir=none",
            f"--model_dir={model_dir}"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.Popen([sys.executable, "-m", "launch.train", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt_dir = model_dir / "washer" / "checkpoints"
    deadline = time.time() + 300
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

    result, _ = _run(*args)
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"Resuming from step {killed_step} of 16" in result.stdout
    results = json.loads((model_dir / "washer" / "results.json").read_text())
    assert results["train_steps"] == 16 and results["final_train_metrics"]["step"] == 16
    state = tf.train.get_checkpoint_state(str(ckpt_dir))
    assert state.model_checkpoint_path.endswith("ckpt-16")
    for path in state.all_model_checkpoint_paths:  # every kept checkpoint is whole
        reader = tf.train.load_checkpoint(path)
        assert reader.get_variable_to_shape_map()


def test_runs_on_a_remote_filesystem(tmp_path):
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
argv = ["train"] + {TINY!r} + ["--data_dir=ram://data", "--model_dir=ram://runs/model"]
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
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
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


def test_threshold_from_held_out_normal_images(tiny_run):
    model_dir, _ = tiny_run
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


def test_threshold_override_reexports_without_training(tiny_run):
    import numpy as np
    import tensorflow as tf

    model_dir, _ = tiny_run
    checkpoints = sorted(os.listdir(model_dir / "washer" / "checkpoints"))
    result, _ = _run(f"--model_dir={model_dir}", "--category=washer", "--threshold=12.5",
                     module="launch.export")
    assert result.returncode == 0, result.stderr[-4000:]
    assert "threshold 12.5 (manual)" in result.stdout
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


def test_export_refuses_both_threshold_flags(tiny_run):
    model_dir, _ = tiny_run
    result, _ = _run(f"--model_dir={model_dir}", "--threshold=1", "--threshold_quantile=0.9",
                     module="launch.export")
    assert result.returncode == 2
    assert "give --threshold or --threshold_quantile, not both" in result.stderr


def test_export_quantile_override_uses_the_stored_normal_scores(tiny_run):
    from cutpaste_tf.evaluation import threshold as th
    from launch import export as export_launch

    model_dir, _ = tiny_run
    record = json.loads((model_dir / "washer" / "threshold.json").read_text())
    flags = export_launch.FLAGS
    try:
        flags(["export", "--threshold_quantile=0.5"])
        cut = export_launch.new_threshold(record)
    finally:
        flags.unparse_flags()
    expected = th.quantile_threshold(record["normal_scores"], 0.5)
    assert cut.value == expected.value and cut.quantile == 0.5
    assert cut.method == "validation_quantile" and cut.num_images == 15


@pytest.mark.parametrize("preset, expected", [(None, "1"), ("0", "0")])
def test_launchers_turn_on_onednn_unless_the_environment_says_otherwise(preset, expected):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if preset is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = preset
    out = subprocess.run([sys.executable, "-c",
                          "import os, launch; print(os.environ['TF_ENABLE_ONEDNN_OPTS'])"],
                         env=env, capture_output=True, text=True, check=True,
                         cwd=ROOT)
    assert out.stdout.strip() == expected
