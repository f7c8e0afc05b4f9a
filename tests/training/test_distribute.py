"""Distribution strategies, mixed precision and on-device augmentation.

The strategies need a fresh TensorFlow runtime (logical devices, TF_CONFIG), so those tests run
``tests/distributed_main.py`` in subprocesses.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys
import urllib.error

import numpy as np
import pytest
import tensorflow as tf

from cutpaste_tf import data as data_lib
from cutpaste_tf.config import ModelConfig, RunConfig, TrainConfig
from cutpaste_tf.pipeline import build
from cutpaste_tf.training import distribute
from cutpaste_tf.training import step as step_lib

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "distributed_main.py"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_mirrored_strategy_on_two_cpu_devices(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "mirrored", str(tmp_path)], env=ENV,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    out = json.loads((tmp_path / "result_0.json").read_text())
    assert out["replicas"] == 2 and out["replica_copies"] == 2
    assert out["replica_max_diff"] == 0.0  # weights and batch-norm statistics agree
    assert np.isfinite(out["loss"])
    # Two replicas on halves of a batch take the same SGD steps as one device on all of it.
    assert out["equivalence_max_diff"] < 1e-6
    assert (tmp_path / "model" / "checkpoints" / "ckpt-3.index").exists()


def test_multi_worker_processes_end_with_equal_weights(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        procs.append(subprocess.Popen(
            [sys.executable, str(SCRIPT), "multi_worker", str(tmp_path)],
            env={**ENV, "TF_CONFIG": tf_config}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    try:
        outputs = [p.communicate(timeout=600) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-4000:]
    results = [json.loads((tmp_path / f"result_{i}.json").read_text()) for i in range(2)]
    assert [r["replicas"] for r in results] == [2, 2]
    assert [r["chief"] for r in results] == [True, False]
    assert results[0]["loss"] == pytest.approx(results[1]["loss"], rel=1e-6)
    weights = [np.load(tmp_path / f"weights_{i}.npy") for i in range(2)]
    np.testing.assert_array_equal(weights[0], weights[1])
    model_dir = tmp_path / "model"
    assert (model_dir / "checkpoints" / "ckpt-3.index").exists()
    assert not list(model_dir.glob(".worker-*")), "worker's temporary checkpoints left behind"


def test_strategy_names(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.resolve_name("auto") == "default"
    assert distribute.resolve_name("auto", tpu="local") == "tpu"
    assert distribute.resolve_name("mirrored") == "mirrored"
    monkeypatch.setenv("TF_CONFIG", json.dumps(
        {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}))
    assert distribute.resolve_name("auto") == "multi_worker"
    with pytest.raises(ValueError, match="--strategy must be one of"):
        distribute.resolve_name("horovod")
    monkeypatch.delenv("TF_CONFIG")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.make_strategy("multi_worker")
    with pytest.raises(ValueError, match="--tpu"):
        distribute.make_strategy("tpu")
    assert distribute.make_strategy("default") is tf.distribute.get_strategy()


@pytest.mark.parametrize("error, cause", [
    (urllib.error.URLError(socket.gaierror(-2, "Name or service not known")),
     "Name or service not known"),
    (ValueError("Please provide a TPU Name to connect to."),
     "Please provide a TPU Name to connect to."),
    (tf.errors.UnavailableError(None, None, "Socket closed\nmore detail"), "Socket closed"),
])
def test_an_unresolvable_tpu_is_one_line_naming_the_cause(monkeypatch, error, cause):
    def resolver(tpu):
        assert tpu == "my-tpu"
        raise error

    monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver", resolver)
    with pytest.raises(ValueError) as raised:
        distribute.make_strategy("tpu", "my-tpu")
    message = str(raised.value)
    assert message == (f"--tpu=my-tpu: cannot resolve the TPU: {cause} (off Google Cloud, "
                       "pass --tpu=grpc://<address>:8470 or run on a TPU VM)")
    assert "\n" not in message


def test_batch_must_split_over_replicas():
    config = RunConfig(train=TrainConfig(task="3way", batch_size=96))
    build.check_batch(config, 8)  # 12 views (4 images x 3) per replica
    with pytest.raises(ValueError, match="batch_size=96 does not split over 5 replicas"):
        build.check_batch(config, 5)


def _config(**train_kwargs):
    return RunConfig(model=ModelConfig(head_widths=(8,)), train=TrainConfig(
        task="3way", image_size=(32, 32), batch_size=6, epochs=1, steps_per_epoch=2,
        **train_kwargs))


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_step_keeps_float32_variables_and_outputs(precision):
    config = _config(precision=precision)
    model = build.build_model(config, precision)
    assert tf.keras.config.dtype_policy().name == "float32"  # the global policy is restored
    assert model.get_layer("classifier").compute_dtype == precision.split("_")[1]
    assert all(v.dtype == "float32" for v in model.variables)
    optimizer = step_lib.make_optimizer(config.train)
    optimizer.build(model.trainable_variables)
    assert isinstance(optimizer, tf.keras.optimizers.LossScaleOptimizer) == (
        precision == "mixed_float16")
    rng = np.random.default_rng(0)
    views = tf.constant(rng.random((6, 32, 32, 3), dtype=np.float32))
    labels = tf.constant([0, 0, 1, 1, 2, 2], tf.int32)
    before = [v.numpy().copy() for v in model.trainable_variables]
    step = step_lib.make_train_step(model, optimizer, config.train)
    # Under float16 the dynamic loss scale starts high and halves on each overflowing step
    # (whose update is skipped); within a few steps updates must go through.
    for _ in range(12):
        metrics = step(views, labels)
        if any(not np.array_equal(b, v.numpy())
               for b, v in zip(before, model.trainable_variables)):
            break
    else:
        pytest.fail("no update applied in 12 steps")
    assert all(np.all(np.isfinite(v.numpy())) for v in metrics.values())
    assert metrics["loss"].dtype == tf.float32
    assert model(views)["pooled"].dtype == tf.float32
    assert all(np.all(np.isfinite(v.numpy())) for v in model.variables)


def test_on_device_augmentation_matches_the_pipeline():
    data = data_lib.index_mvtec(str(ROOT / "testdata"), "washer")
    results = []
    for on_device in (False, True):
        config = _config(augment_on_device=on_device)
        model = build.build_model(config)
        optimizer = step_lib.make_optimizer(config.train)
        optimizer.build(model.trainable_variables)
        batches = build.training_batches(data, config, tf.distribute.get_strategy(), 0)
        first = next(batches)
        assert first[0].dtype == (tf.uint8 if on_device else tf.float32)
        step = step_lib.make_train_step(model, optimizer, config.train)
        results.append(float(step(*first)["xent"]))
    assert results[0] == pytest.approx(results[1], rel=1e-5)
