"""Training the proxy-task classifier (Appendix A.1) with checkpoints, resume and TensorBoard.

A plain custom loop: momentum SGD with one cosine cycle over all steps, cross-entropy plus
``weight_decay * sum(tf.nn.l2_loss(w))`` over all trainable weights (TensorFlow's L2 sense, as
in the authors' companion code: ``wd * ||w||^2 / 2``, which is PyTorch's ``weight_decay=wd``).
Checkpoints go through ``tf.train.CheckpointManager``: TensorFlow writes a checkpoint's data
and index under a temporary prefix, merges them under the final name, and only then rewrites the
small ``checkpoints/checkpoint`` state file (itself atomically) to point at it. A checkpoint is
valid once that file names it, so a run killed mid-save resumes from the previous one, and the
next save overwrites the half-written files. Before every save the loss and every model and
optimizer variable must be finite: a diverged run stops with :class:`TrainingError` and the
last good checkpoint stays the newest.
"""

from __future__ import annotations

import math
import os
import time
from typing import Iterator, Optional

import keras
import numpy as np
import tensorflow as tf

from cutpaste_tf.config import TASK_VIEWS, TrainConfig


class TrainingError(RuntimeError):
    """Training cannot continue (for example, the loss stopped being finite)."""


def make_schedule(config: TrainConfig) -> keras.optimizers.schedules.LearningRateSchedule:
    """One cosine cycle from ``learning_rate`` down to 0 over all training steps."""
    return keras.optimizers.schedules.CosineDecay(config.learning_rate, config.total_steps)


def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    """Momentum SGD on :func:`make_schedule`."""
    return keras.optimizers.SGD(learning_rate=make_schedule(config), momentum=config.momentum)


def l2_penalty(variables) -> tf.Tensor:
    """``sum(||w||^2) / 2`` over the given variables (``tf.nn.l2_loss`` summed)."""
    return tf.add_n([tf.nn.l2_loss(tf.cast(v, tf.float32)) for v in variables])


def make_train_step(model: keras.Model, optimizer: keras.optimizers.Optimizer,
                    config: TrainConfig):
    """A compiled step: (views, labels) -> dict of loss, cross-entropy, L2 and accuracy."""

    def step(views: tf.Tensor, labels: tf.Tensor) -> dict[str, tf.Tensor]:
        with tf.GradientTape() as tape:
            logits = model(views, training=True)["logits"]
            xent = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
            l2 = l2_penalty(model.trainable_variables)
            loss = xent + config.weight_decay * l2
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        correct = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels)
        return {"loss": loss, "xent": xent, "l2": l2,
                "accuracy": tf.reduce_mean(tf.cast(correct, tf.float32))}

    return tf.function(step, jit_compile=config.jit_compile)


def train(model: keras.Model, batches: Iterator, config: TrainConfig, model_dir: str,
          verbose: bool = True) -> dict[str, float]:
    """Trains ``model`` until ``config.total_steps``, resuming from ``model_dir`` if possible.

    Args:
      model: the CutPaste classifier (dict outputs with ``logits``).
      batches: an iterator of ``(views, labels)``; it must start at the step that
        :func:`restore_step` reports for ``model_dir`` (see ``train_dataset(start_step=...)``).
      config: optimisation settings.
      model_dir: where ``checkpoints/`` and ``logs/train`` go.
      verbose: print a progress bar.

    Returns:
      The last logged metrics and the step reached.
    """
    optimizer = make_optimizer(config)
    optimizer.build(model.trainable_variables)
    checkpoint, manager = _checkpointing(model, optimizer, model_dir)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    start = int(optimizer.iterations.numpy())
    total = config.total_steps
    step_fn = make_train_step(model, optimizer, config)
    writer = tf.summary.create_file_writer(os.path.join(model_dir, "logs", "train"))
    progress = keras.utils.Progbar(total, stateful_metrics=["loss", "accuracy", "lr"],
                                   verbose=1 if verbose else 0)
    if verbose and start:
        print(f"Resuming from step {start} of {total} ({manager.latest_checkpoint})")
    progress.update(start)
    last: dict[str, float] = {}
    tic, tic_step = time.perf_counter(), start
    for step in range(start, total):
        views, labels = next(batches)
        if step == start:
            _log_views(writer, views, labels, step, TASK_VIEWS[config.task])
        metrics = step_fn(views, labels)
        done = step + 1
        save = done % config.checkpoint_every == 0 or done == total
        if save or done % config.log_every == 0:
            last = {k: float(v) for k, v in metrics.items()}
            if not all(math.isfinite(v) for v in last.values()):
                raise TrainingError(
                    f"non-finite training metrics at step {done}: {last}; the last good "
                    f"checkpoint is {manager.latest_checkpoint or 'none (no checkpoint yet)'}")
            lr = float(optimizer.learning_rate)
            rate = (done - tic_step) / max(time.perf_counter() - tic, 1e-9)
            tic, tic_step = time.perf_counter(), done
            with writer.as_default(step=done):
                for key, value in last.items():
                    tf.summary.scalar(f"train/{key}", value)
                tf.summary.scalar("train/learning_rate", lr)
                tf.summary.scalar("train/steps_per_second", rate)
            progress.update(done, [("loss", last["loss"]), ("accuracy", last["accuracy"]),
                                   ("lr", lr)])
        if save:  # only after the metrics above were found finite
            bad = _non_finite_variables(checkpoint_variables(model, optimizer))
            if bad:
                raise TrainingError(
                    f"non-finite values in {len(bad)} variable(s) at step {done} (e.g. "
                    f"{', '.join(bad[:3])}) although the loss is finite; not saved: the last "
                    f"good checkpoint is {manager.latest_checkpoint or 'none (no checkpoint yet)'}")
            manager.save(checkpoint_number=done)
    writer.flush()
    if start >= total and not manager.latest_checkpoint:
        manager.save(checkpoint_number=total)
    return {**last, "step": float(total)}


def restore_step(model_dir: str) -> int:
    """The step of the newest complete checkpoint under ``model_dir`` (0 if none)."""
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    if not latest:
        return 0
    return int(latest.rsplit("-", 1)[-1])


def restore_weights(model: keras.Model, model_dir: str) -> Optional[str]:
    """Loads the newest checkpoint's model weights (no optimizer needed); returns its path."""
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    if latest:
        tf.train.Checkpoint(model=model).restore(latest).expect_partial()
    return latest


def checkpoint_variables(model: keras.Model, optimizer) -> list:
    """Every variable a checkpoint holds: the model's (BatchNorm statistics too) and the
    optimizer's (momentum)."""
    return list(model.variables) + list(optimizer.variables)


def _non_finite_variables(variables) -> list[str]:
    """Names of the float variables holding NaN or Inf (one fused check, then names)."""
    floats = [v for v in variables if tf.as_dtype(v.dtype).is_floating]
    if not floats:
        return []
    ok = tf.stack([tf.reduce_all(tf.math.is_finite(v)) for v in floats]).numpy()
    return [getattr(v, "path", None) or v.name for v, good in zip(floats, ok) if not good]


def _checkpointing(model, optimizer, model_dir: str):
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(
        checkpoint, os.path.join(model_dir, "checkpoints"), max_to_keep=3)
    return checkpoint, manager


def _log_views(writer, views: tf.Tensor, labels: tf.Tensor, step: int,
               names: tuple[str, ...], per_class: int = 4) -> None:
    """Writes a few training views of each class to TensorBoard: what the network sees."""
    labels = np.asarray(labels)
    with writer.as_default(step=step):
        for label, name in enumerate(names):
            picked = np.flatnonzero(labels == label)[:per_class]
            if picked.size:
                tf.summary.image(f"views/{label}_{name}", tf.gather(views, picked),
                                 max_outputs=per_class)
