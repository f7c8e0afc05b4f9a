"""Anomaly maps of a category's test images against its ground-truth masks, and their pictures.

Both model types produce maps at the evaluation image size for every test image (a patch model
from its dense scores, an image model by GradCAM), then pixel AUROC and AU-PRO over the images
that have a ground-truth mask (normal test images count with an all-zero mask; a defective image
without a mask file is left out of the pixel metrics), and heatmap pictures under
``<model_dir>/<category>/heatmaps/``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from cutpaste_tf import rundir
from cutpaste_tf.config import RunConfig
from cutpaste_tf.data import CategoryData, eval_dataset
from cutpaste_tf.data import masks as mask_lib
from cutpaste_tf.evaluation import metrics
from cutpaste_tf.localization import gradcam, pictures


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
    folder = os.path.join(out, rundir.HEATMAP_DIR)
    pictures.write_category(folder, names, images, maps, masks, data.name)
    return folder


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
    if result and config.localization.heatmaps:
        result["heatmaps"] = write_pictures(out, data, images, maps, size,
                                            config.mask_threshold)
    return {**result, **info} if result else {}
