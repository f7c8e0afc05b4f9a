"""Localisation runs: a patch model end to end, and GradCAM evaluation of an image model.

Both produce anomaly maps at the evaluation image size for every test image, then pixel AUROC
and AU-PRO over the images that have a ground-truth mask (normal test images count with an
all-zero mask; a defective image without a mask file is left out of the pixel metrics), and
heatmap pictures under ``<model_dir>/<category>/heatmaps/``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from cutpaste_tf import config as config_lib
from cutpaste_tf import files
from cutpaste_tf.config import RunConfig
from cutpaste_tf.data import CategoryData, eval_dataset
from cutpaste_tf.data import masks as mask_lib
from cutpaste_tf.evaluation import evaluate, metrics
from cutpaste_tf.evaluation import threshold as threshold_lib
from cutpaste_tf.localization import dense, gradcam, pictures
from cutpaste_tf.localization import density as dense_density
from cutpaste_tf.serving import savedmodel
from cutpaste_tf.serving.patch_scorer import PatchScorer
from cutpaste_tf.training import learning, train

DENSITY_FILE = "dense_density.npz"
HEATMAP_DIR = "heatmaps"


def build_patch_model(config: RunConfig, precision: str = "float32") -> keras.Model:
    """The classifier on inputs of any size (trained on crops, applied to dense patches)."""
    from cutpaste_tf.pipeline import runner as image_runner  # it imports this module

    return image_runner.build_model(config, precision, input_shape=(None, None, 3))


def load_masks(data: CategoryData, image_size: Sequence[int],
               threshold: float = mask_lib.DEFAULT_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """``([N, H, W] bool masks, [N] bool usable)`` for the test images, in order; each mask
    entry (a path or several) read by :func:`cutpaste_tf.data.masks.read_mask`."""
    masks = np.zeros((len(data.test_files), *image_size), bool)
    usable = np.zeros(len(data.test_files), bool)
    for i, (label, entry) in enumerate(zip(data.test_labels, data.mask_files)):
        if label == 0:
            usable[i] = True
        elif mask_lib.mask_paths(entry):
            masks[i] = mask_lib.read_mask(entry, image_size, threshold)
            usable[i] = True
    return masks, usable


def pixel_results(maps: np.ndarray, data: CategoryData, image_size: Sequence[int],
                  mask_threshold: float = mask_lib.DEFAULT_THRESHOLD) -> dict:
    """Pixel AUROC and AU-PRO (all defects, and pixel AUROC per defect type), or {} if no
    defective test image has a mask."""
    masks, usable = load_masks(data, image_size, mask_threshold)
    labels = np.asarray(data.test_labels)
    if not np.any(usable & (labels == 1)) or not masks.any():
        return {}
    defects = np.asarray(data.test_defects)
    per_defect = {}
    for defect in data.defect_types:
        keep = usable & ((labels == 0) | (defects == defect))
        if masks[keep].any():
            per_defect[defect] = metrics.pixel_auroc(maps[keep], masks[keep])
    return {
        "pixel_auroc": metrics.pixel_auroc(maps[usable], masks[usable]),
        "aupro": metrics.aupro(maps[usable], masks[usable]),
        "pixel_auroc_per_defect": per_defect,
        "num_pixel_eval_images": int(usable.sum()),
    }


def write_pictures(out: str, data: CategoryData, images: np.ndarray, maps: np.ndarray,
                   image_size: Sequence[int],
                   mask_threshold: float = mask_lib.DEFAULT_THRESHOLD) -> str:
    """Heatmap PNGs for every test image and the category's grid; returns their folder."""
    masks, _ = load_masks(data, image_size, mask_threshold)
    names = [f"{d}/{os.path.splitext(os.path.basename(p))[0]}"
             for d, p in zip(data.test_defects, data.test_files)]
    folder = os.path.join(out, HEATMAP_DIR)
    pictures.write_category(folder, names, images, maps, masks, data.name)
    return folder


def _dense_batch(config: RunConfig, cells: int) -> int:
    """Images per dense-scoring call: about 16 chunks of patches, at most eval_batch_size."""
    return max(1, min(config.eval_batch_size, 16 * config.localization.chunk_size // cells))


def run_patch_category(data: CategoryData, config: RunConfig, model_dir: str,
                       export_dir: str | None = None, export_version: int = 1,
                       verbose: bool = True, strategy: tf.distribute.Strategy | None = None
                       ) -> dict | None:
    """Trains a patch model on random crops, fits the dense density, sets the decision threshold,
    scores and localises.

    The threshold is the ``config.threshold.quantile`` of the image scores of the
    ``val_fraction`` held-out normal training images (or of the dataset's own normal validation
    images, ``data.val_files``, when it has them), or with no hold-out, of the training images
    themselves (in-sample, so optimistic: an out-of-fold fit of 57x57 densities would cost as
    much as the fit itself times the folds).
    """
    out = os.path.join(model_dir, data.name)
    tcfg, loc, dcfg = config.train, config.localization, config.density
    train_files, val_files = threshold_lib.split_holdout(
        data.train_files, config.threshold.val_fraction, tcfg.seed, given=data.val_files)
    data = dataclasses.replace(data, train_files=train_files)
    size = tcfg.image_size
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = build_patch_model(config, tcfg.precision)
    start = train.restore_step(out)
    from cutpaste_tf.pipeline import runner as image_runner  # the shared input pipeline
    batches = image_runner.training_batches(data, config, strategy, start)
    if verbose and train.is_chief(strategy):
        print(f"[{data.name}] training patch model ({tcfg.task}, "
              f"{loc.train_patch_size[0]}x{loc.train_patch_size[1]} crops of "
              f"{size[0]}x{size[1]}) for {tcfg.total_steps} steps")
    tic = time.perf_counter()
    last = train.train(model, batches, tcfg, out, verbose=verbose, strategy=strategy)
    train_seconds = time.perf_counter() - tic
    if not train.is_chief(strategy):
        return None
    if strategy is not tf.distribute.get_strategy() or tcfg.precision != "float32":
        model = build_patch_model(config)  # float32, undistributed: evaluated and exported
        train.restore_weights(model, out)

    tic = time.perf_counter()
    per_location = dense_density.resolve_per_location(loc.per_location, data.aligned)
    scorer_grid = dense.grid_size(size, loc.patch_size, loc.stride)
    embedder = dense.DenseEmbedder(model, size, loc.patch_size, loc.stride, dcfg.feature,
                                   loc.chunk_size)
    batch = _dense_batch(config, scorer_grid[0] * scorer_grid[1])
    train_feats = np.concatenate([embedder(x).numpy()
                                  for x in eval_dataset(data.train_files, size, batch)])
    density = dense_density.fit_dense_density(train_feats, per_location, dcfg.normalize)
    dense_density.save(density, os.path.join(out, DENSITY_FILE))
    scorer = PatchScorer(model, density, size, loc.patch_size, loc.stride, loc.upsample_sigma,
                         dcfg.feature, loc.chunk_size)
    maps_fn = tf.function(scorer.maps, input_signature=[tf.TensorSpec([None, *size, 3])])
    if val_files:
        normal = np.concatenate([maps_fn(x)[0].numpy().max(axis=(1, 2))
                                 for x in eval_dataset(list(val_files), size, batch)])
        method = "validation_quantile"
    else:
        normal = density.score_map(tf.constant(train_feats, tf.float32)).numpy().max(axis=(1, 2))
        method = "training_quantile"
    del train_feats
    cut = threshold_lib.quantile_threshold(normal, config.threshold.quantile, method)
    scorer.threshold.assign(cut.value)
    files.write_json(os.path.join(out, "threshold.json"), {
        "normal_method": method, "normal_threshold": cut.to_dict(), "threshold": cut.to_dict(),
        "normal_scores": normal.tolist(), "normal_files": list(val_files)})
    images, score_maps, maps = [], [], []
    for x in eval_dataset(data.test_files, size, batch):
        s, m = maps_fn(x)
        images.append(x.numpy()), score_maps.append(s.numpy()), maps.append(m.numpy())
    images, score_maps, maps = (np.concatenate(a) for a in (images, score_maps, maps))
    scores = score_maps.max(axis=(1, 2))
    evaluate.write_scores(os.path.join(out, "scores.csv"), data, scores)
    result = {
        "category": data.name,
        "kind": data.kind,
        "model_type": "patch",
        "localization_method": "patch",
        "per_location_density": per_location,
        "score_map_size": list(scorer_grid),
        **evaluate.evaluate(scores, data),
        **pixel_results(maps, data, size, config.mask_threshold),
        "threshold": cut.to_dict(),
        "train_steps": tcfg.total_steps,
        "train_seconds_this_run": round(train_seconds, 1),
        "final_train_metrics": last,
        # Whether the proxy task left chance (None for a run too short to judge).
        "learning": learning.verdict(out, tcfg.total_steps, tcfg.num_classes),
    }
    if loc.pictures:
        result["heatmaps"] = write_pictures(out, data, images, maps, size,
                                            config.mask_threshold)
    result["dense_eval_seconds"] = round(time.perf_counter() - tic, 1)
    if export_dir:
        path = savedmodel.export(scorer, export_dir, data.name, export_version,
                             metadata={"config": config_lib.to_dict(config),
                                       "model_type": "patch", "threshold_info": cut.to_dict()})
        result["export_path"] = path
    files.write_json(os.path.join(out, "results.json"), result)
    if verbose:
        print(f"[{data.name}] image AUROC {result['auroc']:.4f}"
              + (f", pixel AUROC {result['pixel_auroc']:.4f}, AU-PRO {result['aupro']:.4f}"
                 if "pixel_auroc" in result else ""))
    return result


def gradcam_results(model: keras.Model, density: tf.Module, data: CategoryData,
                    config: RunConfig, out: str) -> dict:
    """GradCAM maps of the image-level model (w.r.t. the anomaly score) for the test images,
    their pixel metrics, and pictures; {} when no defective test image has a mask.

    The map is that of ``config.localization.gradcam_layer`` (``auto``: see
    :func:`cutpaste_tf.localization.gradcam.choose_layer`), recorded as ``gradcam_layer`` and
    ``gradcam_map_size``. A map under 8x8 gives no pixel metrics and no pictures: the result
    says why in ``pixel_auroc_not_reported`` instead.
    """
    if not any(mask_lib.mask_paths(m) for m in data.mask_files):
        return {}
    size = config.train.image_size
    backbone = config.model.backbone
    layer = gradcam.choose_layer(config.localization.gradcam_layer, size, backbone)
    info = {"localization_method": "gradcam", "gradcam_layer": layer,
            "gradcam_map_size": list(gradcam.map_size(layer, size))}
    why = gradcam.too_small(layer, size, backbone)
    if why:
        return {**info, "pixel_auroc_not_reported": why}
    fn = gradcam.gradcam_fn(model, density, size, config.density.feature, layer)
    images, maps = [], []
    for x in eval_dataset(data.test_files, size, config.eval_batch_size):
        cam, _ = fn(x)
        images.append(x.numpy()), maps.append(cam.numpy())
    images, maps = np.concatenate(images), np.concatenate(maps)
    result = pixel_results(maps, data, size, config.mask_threshold)
    if result and config.localization.pictures:
        result["heatmaps"] = write_pictures(out, data, images, maps, size,
                                            config.mask_threshold)
    return {**result, **info} if result else {}

