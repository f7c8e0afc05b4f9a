"""Gradient coherence: its arithmetic, a repeated batch against shuffled labels, the probe
leaving the model as it was (the heads launch.diagnose probes: tests/analysis/test_head_probe.py)."""

import numpy as np
import pytest
import tensorflow as tf

from cutpaste_tf.models import build_cutpaste_model
from cutpaste_tf.training import diagnostics


def test_coherence_of_parallel_and_random_gradients():
    rng = np.random.default_rng(0)
    direction = rng.normal(size=500)
    parallel = np.stack([direction * s + 0.01 * rng.normal(size=500) for s in (1, 2, 3)])
    assert diagnostics.coherence(parallel)["cosine"] > 0.99
    noise = diagnostics.coherence(rng.normal(size=(20, 5000)))
    assert abs(noise["cosine"]) < 5 * noise["cosine_se"] + 1e-3
    assert noise["grad_norm"] == pytest.approx(np.sqrt(5000), rel=0.05)


def test_the_same_batch_gives_the_same_gradient_and_shuffled_labels_do_not():
    tf.keras.utils.set_random_seed(0)
    # Non-zero logits, so that the first gradient reaches the backbone.
    model = build_cutpaste_model(2, head_widths=(16,), input_shape=(32, 32, 3),
                                 classifier_init="glorot_uniform")
    rng = np.random.default_rng(1)
    views = tf.constant(rng.random((8, 32, 32, 3), dtype=np.float32))
    labels = tf.constant(np.repeat([0, 1], 4).astype(np.int32))
    moving = [v.numpy().copy() for v in model.non_trainable_variables]
    result = diagnostics.gradient_coherence(model, [(views, labels)] * 3)
    assert result["batches"] == 3
    assert result["true_labels"]["cosine"] == pytest.approx(1.0, abs=1e-4)
    assert result["true_labels"]["grad_norm"] > 0
    # Each batch's labels are shuffled differently: the gradients no longer agree.
    assert result["shuffled_labels"]["cosine"] < 0.9
    # The probe trains nothing and leaves BatchNorm's moving statistics as they were.
    for before, v in zip(moving, model.non_trainable_variables):
        np.testing.assert_array_equal(before, v.numpy())
    with pytest.raises(ValueError, match="two batches"):
        diagnostics.gradient_coherence(model, [(views, labels)])
