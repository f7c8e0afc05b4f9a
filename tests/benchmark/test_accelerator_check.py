"""cutpaste_tf.benchmark.accelerator_check and launch.accelerator_check: the CPU (tiny) form end to end,
one JSON with every part; a failing combination is recorded and the rest still run."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from cutpaste_tf.benchmark import accelerator_check as check
from cutpaste_tf.config import RunConfig

ROOT = pathlib.Path(__file__).resolve().parents[2]
ONE = "float32_xla_off_augment_on_device_off"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The launcher's JSON in CPU form, timing one combination (the others: skipped)."""
    output = tmp_path_factory.mktemp("check") / "accelerator_check.json"
    # One BLAS thread: the density fits' eigendecompositions crawl with two threads on two
    # busy cores.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
           "OPENBLAS_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "launch.accelerator_check", f"--check_output={output}",
         f"--combinations={ONE}"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert not list(output.parent.glob("*.tmp-*"))  # written through a temporary name
    return json.loads(output.read_text())


def test_cpu_form_writes_every_part(report):
    assert {"schema_version", "complete", "started_utc", "finished_utc", "seconds", "mode",
            "mode_reason", "settings", "environment", "serving", "throughput",
            "training_run", "shrunk", "skipped", "errors"} <= set(report)
    assert report["complete"] is True and report["errors"] == {}
    assert report["mode"] == "tiny" and report["settings"]["image_size"] == [32, 32]
    env = report["environment"]
    assert env["status"] == "ok" and env["tensorflow"] and env["devices"]
    assert isinstance(env["xla"]["available"], bool)
    assert isinstance(env["bfloat16"]["available"], bool)


def test_shrunk_and_skipped_parts_say_why(report):
    assert set(report["shrunk"]) == {"serving", "throughput", "training_run"}
    assert all("no GPU" in reason for reason in report["shrunk"].values())
    assert set(report["throughput"]) == set(check.COMBINATION_NAMES)
    for name, entry in report["throughput"].items():
        if name == ONE:
            assert entry["status"] == "ok"
            assert entry["train_images_per_s_pipeline"] > 0
        else:
            assert entry["status"] == "skipped" and entry["reason"]
            assert report["skipped"][f"throughput/{name}"] == entry["reason"]


def test_serving_and_training_run(report):
    serving = report["serving"]
    assert serving["status"] == "ok"
    assert serving["bare_latency_ms_p50"] > 0 and serving["serving_bytes_over_bare"] > 0
    run = report["training_run"]
    assert run["status"] == "ok" and run["combination"] == ONE and run["steps"] == 6
    assert isinstance(run["image_auroc"], float) and 0.0 <= run["image_auroc"] <= 1.0


def test_a_failing_combination_is_recorded_and_the_others_run(monkeypatch):
    def fake_training(config, category, steps):
        if config.train.jit_compile:
            raise RuntimeError("no XLA today")
        return {"train_images_per_s_pipeline": 10.0 + config.train.augment_on_device}

    monkeypatch.setattr(check.speed, "training", fake_training)
    out = check.measure_throughput(RunConfig(), None, 1, check.COMBINATION_NAMES,
                                   "bf16 unavailable", deadline=float("inf"))
    for (precision, jit, on_device), name in zip(check.COMBINATIONS, check.COMBINATION_NAMES):
        if precision == "mixed_bfloat16":
            assert out[name] == {"status": "skipped", "reason": "bf16 unavailable"}
        elif jit:
            assert out[name]["status"] == "error"
            assert out[name]["error"] == "RuntimeError: no XLA today"
        else:
            assert out[name]["status"] == "ok"
    assert check.fastest(out) == ("float32_xla_off_augment_on_device_on", 11.0)
    late = check.measure_throughput(RunConfig(), None, 1, [ONE], None, deadline=0.0)
    assert "time budget" in late[ONE]["reason"]


def test_plain_makes_strict_json():
    import numpy as np
    value = {"a": np.float32(1.5), "b": float("nan"), "c": (1, np.int64(2)), "d": object()}
    out = check.plain(value)
    assert out["a"] == 1.5 and out["b"] is None and out["c"] == [1, 2]
    json.dumps(out, allow_nan=False)
