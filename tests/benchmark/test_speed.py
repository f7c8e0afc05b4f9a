"""cutpaste_tf.benchmark.speed: the serve figures (SavedModel against the bare network, both p50s and
their ratio) and the alternating timer. Keys and consistency only, no timing assertions."""

import pathlib

import numpy as np
import pytest

from cutpaste_tf.benchmark import speed
from cutpaste_tf.config import RunConfig, TrainConfig

IMAGE = str(pathlib.Path(__file__).resolve().parents[2] / "testdata/washer/test/good/000.png")


def test_interleaved_seconds_calls_each_function_in_turn():
    calls = []
    times = speed.interleaved_seconds({"a": lambda: calls.append("a"),
                                       "b": lambda: calls.append("b")}, rounds=3)
    assert calls == ["a", "a", "b", "b"] + ["a", "b"] * 3  # two warm-ups each, then in turn
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3}
    assert all(np.all(v >= 0) for v in times.values())


def test_serving_image_is_a_png_at_the_requested_size():
    import tensorflow as tf
    for path in (None, IMAGE):
        pixels = tf.io.decode_png(speed.serving_image((40, 56), path))
        assert pixels.shape == (40, 56, 3)


def test_serving_reports_savedmodel_and_bare_p50_and_their_ratio():
    config = RunConfig(train=TrainConfig(image_size=(32, 32), batch_size=6))
    out = speed.serving(config, steps=2, image_path=IMAGE)
    for key in ("serving_latency_ms_p50", "serving_latency_ms_p95",
                "serving_bytes_latency_ms_p50", "serving_bytes_latency_ms_p95",
                "bare_latency_ms_p50", "serving_bytes_over_bare", "serving_float_over_bare",
                "serving_batch32_images_per_s"):
        assert out[key] > 0, key
    assert out["serving_rounds"] == 20  # at least 20 alternating rounds, whatever steps says
    assert out["serving_bytes_over_bare"] == pytest.approx(
        out["serving_bytes_latency_ms_p50"] / out["bare_latency_ms_p50"], rel=0.02)
    assert out["serving_score_abs_diff"] < 1e-4  # the same image scores the same both ways
