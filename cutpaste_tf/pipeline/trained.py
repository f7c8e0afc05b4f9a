"""A finished run's trained image model and fitted density, loaded back from its model dir.

Used by the analyses that run after training (synthetic anomalies, t-SNE); the layout is the
one :mod:`cutpaste_tf.pipeline.runner` writes.
"""

from __future__ import annotations

import os
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from cutpaste_tf import config as config_lib
from cutpaste_tf import files
from cutpaste_tf.config import RunConfig
from cutpaste_tf.data import eval_dataset
from cutpaste_tf.density import gaussian as density_lib
from cutpaste_tf.pipeline import runner
from cutpaste_tf.training import train


def load_run_config(model_dir: str) -> RunConfig:
    """The RunConfig in ``<model_dir>/config.json``; ValueError if it is missing or from an
    incompatible package version."""
    path = os.path.join(model_dir, runner.CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        raise ValueError(f"--model_dir={model_dir} has no {runner.CONFIG_FILE}; is it a "
                         "launch.train model dir?")
    raw = files.read_json(path)
    runner.check_version(raw.pop(runner.VERSION_KEY, None), f"model dir {model_dir!r}")
    return config_lib.from_dict(RunConfig, raw)


def trained_categories(model_dir: str) -> list[str]:
    """Categories of ``model_dir`` that have a fitted density (``<category>/density.npz``)."""
    if not tf.io.gfile.isdir(model_dir):
        return []
    return sorted(n.rstrip("/") for n in tf.io.gfile.listdir(model_dir)
                  if tf.io.gfile.exists(os.path.join(model_dir, n.rstrip("/"), "density.npz")))


def load_trained(model_dir: str, category: str, config: RunConfig
                 ) -> tuple[keras.Model, density_lib.Density]:
    """The float32 image model with its newest checkpoint, and the category's density."""
    if config.localization.model_type != "image":
        raise ValueError(f"--model_dir={model_dir} holds a {config.localization.model_type!r} "
                         "model; this analysis needs an image-level model (--model_type=image)")
    out = os.path.join(model_dir, category)
    density_path = os.path.join(out, "density.npz")
    if not tf.io.gfile.exists(density_path):
        trained = trained_categories(model_dir)
        raise ValueError(f"no trained model for category {category!r} in --model_dir={model_dir} "
                         f"(no {density_path}; trained: {', '.join(trained) or 'none'})")
    model = runner.build_model(config)
    if not train.restore_weights(model, out):
        raise ValueError(f"no checkpoint under {os.path.join(out, 'checkpoints')}")
    estimator = density_lib.load_density(density_path,
                                         expect={"backbone": config.model.backbone,
                                                 "feature": config.density.feature})
    return model, estimator


def load_images(paths: Sequence[str], image_size: Sequence[int],
                batch_size: int = 32) -> np.ndarray:
    """Preprocessed images (float32 [N, H, W, 3] in [0, 1]) as the model sees them; a file that
    cannot be decoded raises ValueError naming the folder."""
    if not paths:
        return np.zeros([0, *image_size, 3], np.float32)
    try:
        return np.concatenate([b.numpy() for b in eval_dataset(paths, image_size, batch_size)])
    except tf.errors.OpError as e:
        folder = os.path.dirname(paths[0])
        raise ValueError(f"could not decode an image among {len(paths)} files in {folder} "
                         f"(and beside it): {e.message.splitlines()[0]}") from None
