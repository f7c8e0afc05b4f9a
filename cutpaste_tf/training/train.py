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

Two-stage fine-tuning (Appendix A.4, ``config.head_epochs > 0``): the global step decides the
stage. Steps ``[0, head_steps)`` train only the head and classifier (backbone frozen, so its
batch norm runs in inference mode) on a cosine cycle from ``head_learning_rate``; the rest train
every layer on a second cosine cycle from ``learning_rate``, with the backbone's batch norm
layers frozen when ``freeze_batchnorm``. A checkpoint is saved at the stage boundary, and a
restart at any step resumes in the right stage with the right trainable set and learning rate.
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
from typing import Iterator, Optional

import keras
import numpy as np
import tensorflow as tf

from cutpaste_tf import files
from cutpaste_tf.config import TASK_VIEWS, TrainConfig
from cutpaste_tf.data.pipeline import augment_batch
from cutpaste_tf.models.cutpaste_net import backbone_of
from cutpaste_tf.training import learning


class TrainingError(RuntimeError):
    """Training cannot continue (for example, the loss stopped being finite)."""


class TwoStageCosine(keras.optimizers.schedules.LearningRateSchedule):
    """A cosine cycle from ``head_learning_rate`` to 0 over the first ``head_steps`` steps, then
    one from ``learning_rate`` to 0 over the following ``steps``."""

    def __init__(self, head_learning_rate: float, head_steps: int, learning_rate: float,
                 steps: int):
        self.head_learning_rate, self.head_steps = float(head_learning_rate), int(head_steps)
        self.learning_rate, self.steps = float(learning_rate), int(steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)

        def cosine(peak: float, s: tf.Tensor, n: int) -> tf.Tensor:
            s = tf.clip_by_value(s, 0.0, float(max(n, 1)))
            return peak * 0.5 * (1.0 + tf.cos(math.pi * s / max(n, 1)))

        return tf.where(step < self.head_steps,
                        cosine(self.head_learning_rate, step, self.head_steps),
                        cosine(self.learning_rate, step - self.head_steps, self.steps))

    def get_config(self) -> dict:
        return {"head_learning_rate": self.head_learning_rate, "head_steps": self.head_steps,
                "learning_rate": self.learning_rate, "steps": self.steps}


def make_schedule(config: TrainConfig) -> keras.optimizers.schedules.LearningRateSchedule:
    """One cosine cycle from ``learning_rate`` down to 0 over all training steps; with a
    head-only stage, one cycle per stage (:class:`TwoStageCosine`)."""
    if config.head_steps:
        return TwoStageCosine(config.head_learning_rate, config.head_steps,
                              config.learning_rate, config.total_steps - config.head_steps)
    return keras.optimizers.schedules.CosineDecay(config.learning_rate,
                                                  max(config.total_steps, 1))


def stage_of(step: int, config: TrainConfig) -> str:
    """The stage of the global ``step``: "head" (head-only) or "full" (every layer)."""
    return "head" if step < config.head_steps else "full"


def set_stage(model: keras.Model, stage: Optional[str], config: TrainConfig) -> None:
    """Sets what trains: "head" freezes the backbone; "full" trains every layer, except the
    backbone's batch norm layers with ``config.freeze_batchnorm``; None makes all trainable.

    A frozen Keras batch norm layer runs in inference mode, so its moving statistics stay put.
    Step functions trace ``model.trainable_variables``: make a new one after calling this.
    """
    backbone = backbone_of(model)
    for layer in _all_layers(model):  # Keras does not reliably recurse into nested models
        layer.trainable = True
    if stage == "head":
        backbone.trainable = False
    elif stage == "full" and config.freeze_batchnorm:
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False


def _all_layers(layer: keras.layers.Layer) -> list:
    """``layer`` and every layer nested in it (through ``.layers`` of models)."""
    found = [layer]
    for child in getattr(layer, "layers", []):
        found += _all_layers(child)
    return found


def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    """Momentum SGD on :func:`make_schedule`; with dynamic loss scaling under mixed_float16."""
    optimizer = keras.optimizers.SGD(learning_rate=make_schedule(config),
                                     momentum=config.momentum)
    if config.precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def l2_penalty(variables) -> tf.Tensor:
    """``sum(||w||^2) / 2`` over the given variables (``tf.nn.l2_loss`` summed)."""
    return tf.add_n([tf.nn.l2_loss(tf.cast(v, tf.float32)) for v in variables])


def make_train_step(model: keras.Model, optimizer: keras.optimizers.Optimizer,
                    config: TrainConfig, strategy: Optional[tf.distribute.Strategy] = None):
    """A compiled step: one batch -> dict of loss, cross-entropy, L2, accuracy, accuracy per
    class (a vector, in label order) and the gradient norm of each block (``grad_norm/<block>``,
    see :func:`block_of`; with the loss scale in mixed_float16).

    The batch is ``(views, labels)``, or with ``config.augment_on_device`` the uint8 source
    images and their batch number ``(images, step)`` (augmented inside the step, on the
    accelerator). Under a distribution ``strategy`` each replica gets its share of the global
    batch, the losses are scaled so that the all-reduced (summed) gradients are those of the
    global batch, and the metrics come back summed over replicas, i.e. global.
    """
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    global_batch = config.batch_size
    num_classes = config.num_classes
    blocks: dict[str, list[int]] = {}
    for i, variable in enumerate(model.trainable_variables):
        blocks.setdefault(block_of(variable), []).append(i)

    def replica_step(first: tf.Tensor, second: tf.Tensor) -> dict[str, tf.Tensor]:
        if config.augment_on_device:
            views, labels = augment_batch(first, second, config.seed, config.task, config.augment)
        else:
            views, labels = first, second
        with tf.GradientTape() as tape:
            logits = tf.cast(model(views, training=True)["logits"], tf.float32)
            per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
            xent = tf.reduce_sum(per_example) / global_batch
            l2 = l2_penalty(model.trainable_variables) / replicas
            loss = xent + config.weight_decay * l2
            scaled = (optimizer.scale_loss(loss)
                      if isinstance(optimizer, keras.optimizers.LossScaleOptimizer) else loss)
        grads = tape.gradient(scaled, model.trainable_variables)
        norms = {f"grad_norm/{block}": tf.linalg.global_norm([grads[i] for i in index])
                 / replicas for block, index in blocks.items()}  # replicas' mean, after SUM
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels),
                          tf.float32)
        # Every class has global_batch / V views (balanced batches, whole view groups per
        # replica), so per-class accuracies sum over replicas like the overall one.
        per_class = tf.math.unsorted_segment_sum(correct, labels, num_classes)
        return {"loss": loss, "xent": xent, "l2": l2,
                "accuracy": tf.reduce_sum(correct) / global_batch,
                "accuracy_per_class": per_class * (num_classes / global_batch), **norms}

    replica_step = tf.function(replica_step, jit_compile=config.jit_compile)

    @tf.function
    def step(first, second) -> dict[str, tf.Tensor]:
        per_replica = strategy.run(replica_step, args=(first, second))
        return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                for k, v in per_replica.items()}

    return step


def block_of(variable) -> str:
    """The block a trainable variable belongs to, for gradient norms: "stem", a backbone stage
    ("layer1".."layer4" of ResNet-18, "block1".."block7" of EfficientNet), "head" or
    "classifier"."""
    name = (getattr(variable, "path", None) or variable.name).split("/")[0]
    if name in ("head", "classifier"):
        return name
    match = re.match(r"(layer\d+|block\d+)", name)
    return match.group(1) if match else "stem"


def is_chief(strategy: Optional[tf.distribute.Strategy] = None) -> bool:
    """Whether this process writes checkpoints, logs and results (worker 0 or the chief)."""
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type in (None, "chief"):
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def train(model: keras.Model, batches: Iterator, config: TrainConfig, model_dir: str,
          verbose: bool = True, strategy: Optional[tf.distribute.Strategy] = None
          ) -> dict[str, float]:
    """Trains ``model`` until ``config.total_steps``, resuming from ``model_dir`` if possible.

    Args:
      model: the CutPaste classifier (dict outputs with ``logits``), built under
        ``strategy.scope()`` when a strategy is given.
      batches: an iterator of batches for :func:`make_train_step`; it must start at the step
        that :func:`restore_step` reports for ``model_dir`` (see ``train_dataset(start_step=)``).
      config: optimisation settings.
      model_dir: where ``checkpoints/`` and ``logs/train`` go.
      verbose: print a progress bar (on the chief only).
      strategy: a ``tf.distribute`` strategy (default: the current one, i.e. none).

    Returns:
      The last logged metrics and the step reached.
    """
    strategy = strategy or tf.distribute.get_strategy()
    chief = is_chief(strategy)
    set_stage(model, None, config)  # the optimizer holds slots for every trainable variable
    with strategy.scope():
        optimizer = make_optimizer(config)
        optimizer.build(model.trainable_variables)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    if latest:
        checkpoint.restore(latest).assert_existing_objects_matched()
    # Every worker saves (saving can need collectives); only the chief's copy is kept.
    save_dir = model_dir if chief else os.path.join(
        model_dir, f".worker-{strategy.cluster_resolver.task_id}")
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(save_dir, "checkpoints"),
                                         max_to_keep=3)
    start = int(optimizer.iterations.numpy())
    total = config.total_steps
    stage, step_fn = None, None
    schedule = make_schedule(config)  # the optimizer's, for logging
    writer = (tf.summary.create_file_writer(os.path.join(model_dir, "logs", "train")) if chief
              else tf.summary.create_noop_writer())
    progress = keras.utils.Progbar(max(total, 1), stateful_metrics=["loss", "accuracy", "lr"],
                                   verbose=1 if verbose and chief and total else 0)
    if chief and start:  # said even without a progress bar: a resume should never be silent
        print(f"Resuming from step {start} of {total} ({latest}), {stage_of(start, config)} "
              "stage")
    progress.update(start)
    last: dict[str, float] = {}
    names = TASK_VIEWS[config.task]
    # The curve as far as the restored checkpoint; rows logged after it are redone.
    curve = [r for r in learning.read_curve(model_dir) if r["step"] <= start] if chief else []
    judged = learning.check(curve, total, len(names)) is not None
    warned = False
    window: list[dict] = []  # the metrics of each step since the last log
    tic, tic_step = time.perf_counter(), start
    for step in range(start, total):
        if stage_of(step, config) != stage:
            stage = stage_of(step, config)
            set_stage(model, stage, config)
            step_fn = make_train_step(model, optimizer, config, strategy)
        batch = next(batches)
        if step == start and chief and not config.augment_on_device:
            _log_views(writer, *_local(strategy, batch), step, TASK_VIEWS[config.task])
        window.append(step_fn(*batch))
        done = step + 1
        save = done % config.checkpoint_every == 0 or done in (total, config.head_steps)
        if save or done % config.log_every == 0:
            # Means over the window: a single batch's accuracy is too noisy to judge by.
            means = {k: np.mean([np.asarray(m[k]) for m in window], axis=0) for k in window[0]}
            window = []
            per_class = [float(v) for v in means.pop("accuracy_per_class")]
            last = {k: float(v) for k, v in means.items()}
            if not all(math.isfinite(v) for v in [*last.values(), *per_class]):
                raise TrainingError(
                    f"non-finite training metrics at step {done}: {last}; the last good "
                    f"checkpoint is {manager.latest_checkpoint or latest or 'none (no checkpoint yet)'}")
            lr = float(schedule(done))
            rate = (done - tic_step) / max(time.perf_counter() - tic, 1e-9)
            tic, tic_step = time.perf_counter(), done
            with writer.as_default(step=done):
                for key, value in last.items():
                    tf.summary.scalar(f"train/{key}", value)
                for name, value in zip(names, per_class):
                    tf.summary.scalar(f"train/accuracy_{name}", value)
                tf.summary.scalar("train/learning_rate", lr)
                tf.summary.scalar("train/steps_per_second", rate)
            progress.update(done, [("loss", last["loss"]), ("accuracy", last["accuracy"]),
                                   ("lr", lr)])
            curve.append({"step": done, "loss": last["loss"], "xent": last["xent"],
                          "accuracy": last["accuracy"], "accuracy_per_class": per_class,
                          "learning_rate": lr,
                          "grad_norm": {k.split("/", 1)[1]: v for k, v in last.items()
                                        if k.startswith("grad_norm/")}})
            verdict = None if judged else learning.check(curve, total, len(names))
            if verdict is not None:
                judged = True
                if not verdict["learned"] and chief:
                    _warn(verdict, config.task, model_dir)
                    warned = True
        if save:  # only after the metrics above were found finite
            bad = _non_finite_variables(checkpoint_variables(model, optimizer))
            if bad:
                raise TrainingError(
                    f"non-finite values in {len(bad)} variable(s) at step {done} (e.g. "
                    f"{', '.join(bad[:3])}) although the loss is finite; not saved: the last "
                    f"good checkpoint is {manager.latest_checkpoint or 'none (no checkpoint yet)'}")
            manager.save(checkpoint_number=done)
            if chief:
                learning.write_curve(model_dir, curve, names)
    writer.flush()
    if chief and start < total and not warned:  # e.g. back at chance by the end
        verdict = learning.check(curve, total, len(names))
        if verdict is not None and not verdict["learned"]:
            _warn(verdict, config.task, model_dir)
    set_stage(model, None, config)
    if start >= total and not latest:
        manager.save(checkpoint_number=total)
    if not chief and tf.io.gfile.exists(save_dir):
        files.remove_dir(save_dir)
    return {**last, "step": float(total)}


def _warn(verdict: dict, task: str, model_dir: str) -> None:
    """Prints :func:`learning.warning` for the category trained in ``model_dir``."""
    print("\n" + learning.warning(verdict, task, os.path.basename(os.path.normpath(model_dir))),
          file=sys.stderr, flush=True)


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


def _local(strategy: tf.distribute.Strategy, batch) -> tuple[tf.Tensor, ...]:
    """The first local replica's part of a (possibly per-replica) batch."""
    return tuple(strategy.experimental_local_results(t)[0] for t in batch)


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
