"""A tiny model dir for the analysis launchers' tests: an untrained 32x32 model with a saved
checkpoint and a density fitted on its features, laid out as launch.train writes it (no
training: the tests check the machinery, not the numbers)."""

from __future__ import annotations

import atexit
import functools
import os
import pathlib
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from cutpaste_tf.config import ModelConfig, RunConfig, TrainConfig
from cutpaste_tf.data import index
from cutpaste_tf.density import gaussian as density_lib
from cutpaste_tf.evaluation import evaluate
from cutpaste_tf.pipeline import runner

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIG = RunConfig(model=ModelConfig(head_widths=(16,)),
                   train=TrainConfig(task="cutpaste", image_size=(32, 32), batch_size=6,
                                     epochs=1, steps_per_epoch=2), eval_batch_size=16)


@functools.lru_cache(maxsize=None)
def tiny_model_and_density():
    """(model, GDE fitted on random images' pooled features, config); built once per process."""
    model = runner.build_model(CONFIG)
    images = np.random.default_rng(0).uniform(size=(24, 32, 32, 3)).astype(np.float32)
    features = model(images, training=False)["pooled"].numpy()
    return model, evaluate.fit_features(features, CONFIG.density), CONFIG


def tiny_model_dir(model_dir: pathlib.Path, category: str) -> pathlib.Path:
    """Writes config.json, <category>/checkpoints and <category>/density.npz (fitted on the
    category's testdata training images); returns ``model_dir``."""
    model, _, config = tiny_model_and_density()
    runner.check_model_dir(str(model_dir), config)
    out = os.path.join(model_dir, category)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model),
                                         os.path.join(out, "checkpoints"), max_to_keep=1)
    manager.save(checkpoint_number=2)
    data = index.index_mvtec(str(ROOT / "testdata"), category)
    estimator = evaluate.fit_density(model, data, config.train.image_size, config.density)
    density_lib.save_density(estimator, os.path.join(out, "density.npz"),
                             metadata={"backbone": config.model.backbone,
                                       "feature": config.density.feature})
    return model_dir


@functools.lru_cache(maxsize=None)
def shared_model_dir(category: str = "washer") -> pathlib.Path:
    """One tiny model dir per test process (deleted at exit), shared by the analysis tests."""
    root = pathlib.Path(tempfile.mkdtemp(prefix="cutpaste_analysis_"))
    atexit.register(shutil.rmtree, root, True)
    return tiny_model_dir(root / "run", category)
