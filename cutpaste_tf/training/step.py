"""One optimisation step of the proxy-task classifier (Appendix A.1): the learning rate schedule,
the optimizer, the L2 penalty, what trains in each stage, and the compiled train step. The loop
around it (checkpoints, resume, logging) is :mod:`cutpaste_tf.training.train`.

Momentum SGD with one cosine cycle over all steps, cross-entropy plus
``weight_decay * sum(tf.nn.l2_loss(w))`` over all trainable weights (TensorFlow's L2 sense, as
in the authors' companion code: ``wd * ||w||^2 / 2``, which is PyTorch's ``weight_decay=wd``).

Two-stage fine-tuning (Appendix A.4, ``config.head_epochs > 0``): the global step decides the
stage. Steps ``[0, head_steps)`` train only the head and classifier (backbone frozen, so its
batch norm runs in inference mode) on a cosine cycle from ``head_learning_rate``; the rest train
every layer on a second cosine cycle from ``learning_rate``, with the backbone's batch norm
layers frozen when ``freeze_batchnorm``.
"""

from __future__ import annotations

import math
import re
from typing import Callable, Optional

import keras
import tensorflow as tf

from cutpaste_tf.config import TrainConfig
from cutpaste_tf.data.pipeline import augment_batch
from cutpaste_tf.models.cutpaste_net import backbone_of


class TwoStageCosine(keras.optimizers.schedules.LearningRateSchedule):
    """A cosine cycle from ``head_learning_rate`` to 0 over the first ``head_steps`` steps, then
    one from ``learning_rate`` to 0 over the following ``steps``; that second cycle starts with
    ``warmup_steps`` of linear warm-up (``learning_rate * (s + 1) / warmup_steps``)."""

    def __init__(self, head_learning_rate: float, head_steps: int, learning_rate: float,
                 steps: int, warmup_steps: int = 0):
        self.head_learning_rate, self.head_steps = float(head_learning_rate), int(head_steps)
        self.learning_rate, self.steps = float(learning_rate), int(steps)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)

        def cosine(peak: float, s: tf.Tensor, n: int) -> tf.Tensor:
            s = tf.clip_by_value(s, 0.0, float(max(n, 1)))
            return peak * 0.5 * (1.0 + tf.cos(math.pi * s / max(n, 1)))

        full = step - self.head_steps
        warm = self.warmup_steps
        full_rate = cosine(self.learning_rate, full - warm, self.steps - warm)
        if warm:
            full_rate = tf.where(full < warm, self.learning_rate * (full + 1.0) / warm,
                                 full_rate)
        return tf.where(step < self.head_steps,
                        cosine(self.head_learning_rate, step, self.head_steps), full_rate)

    def get_config(self) -> dict:
        return {"head_learning_rate": self.head_learning_rate, "head_steps": self.head_steps,
                "learning_rate": self.learning_rate, "steps": self.steps,
                "warmup_steps": self.warmup_steps}


def make_schedule(config: TrainConfig) -> keras.optimizers.schedules.LearningRateSchedule:
    """One cosine cycle from ``learning_rate`` down to 0 over all training steps; with a
    head-only stage or a warm-up, :class:`TwoStageCosine`."""
    if config.head_steps or config.warmup_steps:
        return TwoStageCosine(config.head_learning_rate, config.head_steps,
                              config.learning_rate, config.total_steps - config.head_steps,
                              config.warmup_steps)
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
    replica_step = tf.function(
        _replica_step(model, optimizer, config, strategy.num_replicas_in_sync),
        jit_compile=config.jit_compile)

    @tf.function
    def step(first, second) -> dict[str, tf.Tensor]:
        per_replica = strategy.run(replica_step, args=(first, second))
        return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                for k, v in per_replica.items()}

    return step


def _replica_step(model: keras.Model, optimizer: keras.optimizers.Optimizer,
                  config: TrainConfig, replicas: int
                  ) -> Callable[[tf.Tensor, tf.Tensor], dict[str, tf.Tensor]]:
    """The step one replica runs on its share of the batch (see :func:`make_train_step`)."""
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

    return replica_step


def block_of(variable) -> str:
    """The block a trainable variable belongs to, for gradient norms: "stem", a backbone stage
    ("layer1".."layer4" of ResNet-18, "block1".."block7" of EfficientNet), "head" or
    "classifier"."""
    name = (getattr(variable, "path", None) or variable.name).split("/")[0]
    if name in ("head", "classifier"):
        return name
    match = re.match(r"(layer\d+|block\d+)", name)
    return match.group(1) if match else "stem"
