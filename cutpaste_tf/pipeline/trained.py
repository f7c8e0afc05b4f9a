"""A finished run's trained image model and fitted density, loaded back from its model dir.

Used by the analyses that run after training (synthetic anomalies, t-SNE). The run's config and
its trained categories: :func:`cutpaste_tf.rundir.load_run_config` and
:func:`~cutpaste_tf.rundir.trained_categories`.
"""

from __future__ import annotations

import os
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from cutpaste_tf import density as density_lib
from cutpaste_tf import rundir
from cutpaste_tf.config import RunConfig
from cutpaste_tf.data import eval_dataset
from cutpaste_tf.pipeline import image


def load_trained(model_dir: str, category: str, config: RunConfig
                 ) -> tuple[keras.Model, density_lib.Density]:
    """The float32 image model with its newest checkpoint, and the category's density."""
    if config.localization.model_type != "image":
        raise ValueError(f"model_dir={model_dir} holds a {config.localization.model_type!r} "
                         "model; this analysis needs an image-level model (model_type=image)")
    out = rundir.category_dir(model_dir, category)
    density_path = os.path.join(out, image.DENSITY_FILE)
    if not tf.io.gfile.exists(density_path):
        trained = rundir.trained_categories(model_dir)
        raise ValueError(f"no trained model for category {category!r} in model_dir={model_dir} "
                         f"(no {density_path}; trained: {', '.join(trained) or 'none'})")
    return image.load(config, out, pretrained=True)


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
