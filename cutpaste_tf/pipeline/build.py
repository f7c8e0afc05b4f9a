"""The classifier a run trains, and the training batches it is fed (image and patch models)."""

from __future__ import annotations

import os
from typing import Iterator, Optional, Sequence

import keras
import tensorflow as tf

from cutpaste_tf import rundir
from cutpaste_tf.config import RunConfig
from cutpaste_tf.data import CategoryData, train_dataset
from cutpaste_tf.models import build_cutpaste_model
from cutpaste_tf.training import train


def build_model(config: RunConfig, precision: str = "float32",
                input_shape: Optional[Sequence[Optional[int]]] = None,
                pretrained: bool = True) -> keras.Model:
    """The classifier for ``config``, with weights initialised from ``config.train.seed``.

    ``precision`` is the Keras dtype policy of its layers (variables are float32 under every
    policy; the outputs are cast to float32). ``input_shape`` defaults to the training size.
    ``pretrained=False`` skips ``config.model.backbone_weights``: for a model whose weights
    are then restored from a checkpoint (no ImageNet download needed to re-export).
    """
    keras.utils.set_random_seed(config.train.seed)
    height, width = config.train.image_size
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        return build_cutpaste_model(config.train.num_classes, config.model.head_widths,
                                    config.model.backbone,
                                    input_shape=input_shape or (height, width, 3),
                                    backbone_weights=(config.model.backbone_weights
                                                      if pretrained else None),
                                    classifier_init=config.model.classifier_init,
                                    head_batchnorm=config.model.head_batchnorm,
                                    head_init=config.model.head_init,
                                    head_embedding=config.model.head_embedding,
                                    input_standardization=config.model.input_standardization)
    finally:
        keras.config.set_dtype_policy(previous)


def build_patch_model(config: RunConfig, precision: str = "float32",
                      pretrained: bool = True) -> keras.Model:
    """The classifier on inputs of any size (trained on crops, applied to dense patches)."""
    return build_model(config, precision, input_shape=(None, None, 3), pretrained=pretrained)


def check_batch(config: RunConfig, replicas: int) -> None:
    """The global batch must split into equal per-replica batches of whole view groups."""
    tcfg = config.train
    if tcfg.batch_size % (replicas * tcfg.num_views):
        raise ValueError(
            f"batch_size={tcfg.batch_size} does not split over {replicas} replicas into "
            f"per-replica batches that are multiples of the {tcfg.num_views} views of task "
            f"{tcfg.task!r}; use a multiple of {replicas * tcfg.num_views}")


def training_batches(data: CategoryData, config: RunConfig, strategy: tf.distribute.Strategy,
                     start_step: int = 0) -> Iterator:
    """Per-replica training batches from one input pipeline per worker, starting at
    ``start_step`` (the strategy's own ``distribute_datasets_from_function``); random crops of
    ``train_patch_size`` for a patch model. The batch split is checked once per run, before
    anything trains (:func:`check_batch`, from :func:`cutpaste_tf.driver.prepare`)."""
    tcfg = config.train
    replicas = strategy.num_replicas_in_sync
    loc = config.localization
    crop = loc.train_patch_size if loc.model_type == "patch" else None

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        return train_dataset(
            data.train_files, tcfg.image_size, tcfg.task,
            context.get_per_replica_batch_size(tcfg.batch_size), tcfg.seed, tcfg.augment,
            start_step=start_step, augment_in_pipeline=not tcfg.augment_on_device,
            pipeline=(context.input_pipeline_id, context.num_input_pipelines),
            batches_per_step=replicas // context.num_input_pipelines, crop_size=crop,
            jit_augment=tcfg.jit_augment)

    return iter(strategy.distribute_datasets_from_function(dataset_fn))


def restored(model: keras.Model, out: str) -> keras.Model:
    """``model`` with the newest checkpoint of the category folder ``out``; ValueError when
    there is none."""
    if not train.restore_weights(model, out):
        raise ValueError(f"no checkpoint under {os.path.join(out, rundir.CHECKPOINT_DIR)}")
    return model
