"""The patch model's stages of a run (Sec. 3.2, 4.2): trained on random crops, applied to dense
patches; a Gaussian per location (or one for all) over the training images' patch features; an
image's score is the largest of its patch scores, its anomaly map their upsampled grid.

Provides what :mod:`cutpaste_tf.pipeline.runner` asks of a model type (the image model's are in
:mod:`cutpaste_tf.pipeline.image`). The threshold is the ``config.threshold.quantile`` of the
image scores of the held-out normal training images (or of the dataset's own normal validation
images, when it has them), or with no hold-out, of the training images themselves (in-sample, so
optimistic: an out-of-fold fit of 57x57 densities would cost as much as the fit itself times the
folds). A labelled validation set is not used.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Callable, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from cutpaste_tf import rundir
from cutpaste_tf.config import RunConfig
from cutpaste_tf.data import CategoryData, eval_dataset
from cutpaste_tf.evaluation import robustness
from cutpaste_tf.evaluation import threshold as threshold_lib
from cutpaste_tf.localization import dense
from cutpaste_tf.localization import density as dense_density
from cutpaste_tf.pipeline import build, localize, stress
from cutpaste_tf.serving.patch_scorer import PatchScorer
from cutpaste_tf.training import learning

DENSITY_FILE = rundir.DENSE_DENSITY_FILE
EXPORT_METADATA = {"model_type": "patch"}  # what the SavedModel's cutpaste.json adds


@dataclasses.dataclass
class Fitted:
    """The scorer (model + dense density), its compiled map function, and what the later
    stages need: the training features (until the threshold is set), the test images and
    their maps (once scored)."""

    scorer: PatchScorer
    maps_fn: Callable
    features: Optional[np.ndarray]
    per_location: bool
    grid: tuple[int, int]
    batch: int
    started: float  # when the dense evaluation started (perf_counter)
    images: Optional[np.ndarray] = None
    maps: Optional[np.ndarray] = None


def build_model(config: RunConfig, precision: str = "float32",
                pretrained: bool = True) -> keras.Model:
    """The classifier on inputs of any size (trained on crops, applied to dense patches)."""
    return build.build_patch_model(config, precision, pretrained=pretrained)


def start_line(data: CategoryData, config: RunConfig, val_files: Sequence[str],
               strategy: tf.distribute.Strategy) -> str:
    """What the run prints before training (the runner adds where it computes)."""
    tcfg, crop = config.train, config.localization.train_patch_size
    return (f"[{data.name}] training patch model ({tcfg.task}, {crop[0]}x{crop[1]} crops of "
            f"{tcfg.image_size[0]}x{tcfg.image_size[1]}) for {tcfg.total_steps} steps")


def dense_batch(config: RunConfig, cells: int) -> int:
    """Images per dense-scoring call: about 16 chunks of patches, at most eval_batch_size."""
    return max(1, min(config.eval_batch_size, 16 * config.localization.dense_chunk // cells))


def fit(model: keras.Model, data: CategoryData, config: RunConfig, out: str) -> Fitted:
    """Fits the dense density on the training images' patch features and saves it
    (``dense_density.npz``)."""
    started = time.perf_counter()
    loc, size = config.localization, config.train.image_size
    per_location = dense_density.resolve_per_location(loc.per_location, data.aligned)
    grid = dense.grid_size(size, loc.dense_patch_size, loc.stride)
    embedder = dense.DenseEmbedder(model, size, loc.dense_patch_size, loc.stride,
                                   config.density.feature, loc.dense_chunk)
    batch = dense_batch(config, grid[0] * grid[1])
    features = np.concatenate([embedder(x).numpy()
                               for x in eval_dataset(data.train_files, size, batch)])
    density = dense_density.fit_dense_density(features, per_location,
                                              config.density.normalize_features)
    dense_density.save(density, os.path.join(out, DENSITY_FILE))
    scorer = make_scorer(model, density, config, None)
    maps_fn = tf.function(scorer.maps, input_signature=[tf.TensorSpec([None, *size, 3])])
    return Fitted(scorer, maps_fn, features, per_location, grid, batch, started)


def threshold(fitted: Fitted, val_files: Sequence[str],
              validation: Optional[tuple[Sequence[str], Sequence[int]]],
              config: RunConfig) -> tuple[threshold_lib.Threshold, dict]:
    """The quantile of the held-out (or training) images' scores, and its record; frees the
    training features."""
    if val_files:
        normal = np.concatenate([
            fitted.maps_fn(x)[0].numpy().max(axis=(1, 2))
            for x in eval_dataset(list(val_files), config.train.image_size, fitted.batch)])
        method = "validation_quantile"
    else:
        score_map = fitted.scorer.density.score_map(tf.constant(fitted.features, tf.float32))
        normal = score_map.numpy().max(axis=(1, 2))
        method = "training_quantile"
    fitted.features = None
    cut = threshold_lib.quantile_threshold(normal, config.threshold.quantile, method)
    return cut, threshold_lib.record(cut, normal, val_files, cut)


def score(fitted: Fitted, data: CategoryData, config: RunConfig) -> np.ndarray:
    """The test images' scores (the largest patch score); keeps the images and their maps."""
    images, score_maps, maps = [], [], []
    for x in eval_dataset(data.test_files, config.train.image_size, fitted.batch):
        s, m = fitted.maps_fn(x)
        images.append(x.numpy()), score_maps.append(s.numpy()), maps.append(m.numpy())
    fitted.images, fitted.maps = np.concatenate(images), np.concatenate(maps)
    return np.concatenate(score_maps).max(axis=(1, 2))


def stress_normals(fitted: Fitted, unit: PatchScorer, data: CategoryData, config: RunConfig,
                   val_files: Sequence[str]) -> robustness.Normals:
    """The stress test's normals: the held-out images, scored by the exported unit (ValueError
    without them: a patch density has no out-of-fold fit)."""
    return stress.unit_normals(unit, config, val_files)


def result_fields(fitted: Fitted, data: CategoryData, config: RunConfig, scores: np.ndarray,
                  cut: threshold_lib.Threshold, val_files: Sequence[str], out: str) -> dict:
    """What a patch model's results.json holds beside the fields every run has: the density's
    layout, pixel AUROC and AU-PRO, the heatmaps' folder, and the dense evaluation's time."""
    size, mask_threshold = config.train.image_size, config.mask_threshold
    result = {
        "model_type": "patch",
        "localization_method": "patch",
        "per_location_density": fitted.per_location,
        "score_map_size": list(fitted.grid),
        **localize.pixel_results(fitted.maps, data, size, mask_threshold),
    }
    if config.localization.heatmaps:
        result["heatmaps"] = localize.write_pictures(out, data, fitted.images, fitted.maps,
                                                     size, mask_threshold)
    result["dense_eval_seconds"] = round(time.perf_counter() - fitted.started, 1)
    return result


def scorer(fitted: Fitted, config: RunConfig, cut: threshold_lib.Threshold) -> PatchScorer:
    """The exported unit (images -> score, decision at ``cut``, anomaly map)."""
    fitted.scorer.threshold.assign(cut.value)
    return fitted.scorer


def make_scorer(model: keras.Model, density: dense_density.DenseDensity, config: RunConfig,
                value: Optional[float]) -> PatchScorer:
    """A :class:`~cutpaste_tf.serving.patch_scorer.PatchScorer` with threshold ``value``."""
    loc = config.localization
    return PatchScorer(model, density, config.train.image_size, loc.dense_patch_size,
                       loc.stride, loc.sigma_pixels, config.density.feature, loc.dense_chunk,
                       threshold=value)


def load_scorer(config: RunConfig, out: str, value: float) -> PatchScorer:
    """The scorer of a trained category (folder ``out``) with threshold ``value``."""
    model = build.restored(build_model(config, pretrained=False), out)  # weights: checkpoint
    return make_scorer(model, dense_density.load(os.path.join(out, DENSITY_FILE)), config, value)


def end_line(name: str, result: dict, cut: threshold_lib.Threshold) -> str:
    """What the run prints when the category is done (AUROCs and AU-PRO in percent, as the
    tables)."""
    return (f"[{name}] image AUROC {100 * result['auroc']:.1f}%"
            + (f", pixel AUROC {100 * result['pixel_auroc']:.1f}%, AU-PRO "
               f"{100 * result['aupro']:.1f}%" if "pixel_auroc" in result else "")
            + learning.end_note(result.get("learning")))
