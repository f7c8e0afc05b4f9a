"""Where a 3-way train step's time goes: forward, forward and backward, the SGD update and the
whole step (:func:`cutpaste_tf.training.step.make_train_step`), batch 96, random pixels.

Usage: ``python bench/step_parts.py 64 128`` (image sizes). Prints the median of 5 calls of
each part after 2 warm-up calls.
"""

from __future__ import annotations

import sys
import time
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from cutpaste_tf.config import TrainConfig
from cutpaste_tf.models import build_cutpaste_model
from cutpaste_tf.training import step as step_lib


def median_ms(fn: Callable[[], object], calls: int = 5) -> float:
    """Median wall time of ``fn`` in milliseconds, after two warm-up calls."""
    fn(), fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def setup(size: int) -> tuple[keras.Model, keras.optimizers.Optimizer, tf.Tensor, tf.Tensor,
                               Callable]:
    """The default 3-way model and optimizer at ``size`` x ``size``, a constant batch of 96
    random views with balanced labels, and the compiled train step."""
    config = TrainConfig(image_size=(size, size), epochs=1, steps_per_epoch=100)
    keras.utils.set_random_seed(0)
    model = build_cutpaste_model(3, (512,), input_shape=(size, size, 3))
    optimizer = step_lib.make_optimizer(config)
    optimizer.build(model.trainable_variables)
    views = tf.constant(np.random.default_rng(0).random((96, size, size, 3), np.float32))
    labels = tf.constant(np.repeat(np.arange(3, dtype=np.int32), 32))
    return model, optimizer, views, labels, step_lib.make_train_step(model, optimizer, config)


def parts(size: int) -> dict[str, float]:
    """Milliseconds per call of each part of the step at ``size`` x ``size``."""
    model, optimizer, views, labels, full = setup(size)
    zeros = [tf.zeros_like(v) for v in model.trainable_variables]

    @tf.function
    def forward():
        return model(views, training=True)["logits"]

    @tf.function
    def forward_backward():
        with tf.GradientTape() as tape:
            logits = model(views, training=True)["logits"]
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        return tape.gradient(loss, model.trainable_variables)

    @tf.function
    def update():
        optimizer.apply_gradients(zip(zeros, model.trainable_variables))

    return {"forward": median_ms(forward), "forward_backward": median_ms(forward_backward),
            "update": median_ms(update), "step": median_ms(lambda: full(views, labels))}


if __name__ == "__main__":
    for size in [int(s) for s in sys.argv[1:]] or [128]:
        ms = parts(size)
        print(f"{size}px: forward {ms['forward']:.0f} ms, forward+backward "
              f"{ms['forward_backward']:.0f} ms, update {ms['update']:.0f} ms, whole step "
              f"{ms['step']:.0f} ms = {96e3 / ms['step']:.1f} views/s", flush=True)
