"""Pre-augmentation (Sec. 2.1) and the proxy tasks: binary CutPaste, binary Scar, union, 3-way,
and the baselines of Tables 1 and 4 (rotation, Cutout variants, Scar, Confetti; see
:mod:`cutpaste_tf.ops.baselines`).

A batch of ``B`` source images becomes ``B * V`` views with labels ``0 .. V-1``: every source
image first gets a random translation and colour jitter, and then each of its views is made from
that same pre-augmented image (view 0 is the image itself). For the union task the augmented
view is CutPaste or Scar with equal probability, labelled 1 either way.
"""

from __future__ import annotations

from typing import Optional, Sequence

import tensorflow as tf

from cutpaste_tf.config import TASK_VIEWS, AugmentConfig
from cutpaste_tf.ops import baselines, color, cutpaste, sampling


def sample_translation(seed: tf.Tensor, batch_size, height: int, width: int,
                       fraction: float) -> dict[str, tf.Tensor]:
    """Integer shifts ``dy``, ``dx`` uniform in [-fraction * size, fraction * size]."""
    max_dy, max_dx = int(fraction * height), int(fraction * width)
    seeds = sampling.split(seed, 2)
    return {
        "dy": sampling.uniform([batch_size], seeds[0], -max_dy, max_dy + 1, tf.int32),
        "dx": sampling.uniform([batch_size], seeds[1], -max_dx, max_dx + 1, tf.int32),
    }


def apply_translation(images: tf.Tensor, params: dict[str, tf.Tensor]) -> tf.Tensor:
    """Shifts each image by (dy, dx), repeating the edge pixels into the uncovered border."""
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    rows = tf.clip_by_value(tf.range(height)[None, :] - params["dy"][:, None], 0, height - 1)
    cols = tf.clip_by_value(tf.range(width)[None, :] - params["dx"][:, None], 0, width - 1)
    shifted = tf.gather(images, rows, axis=1, batch_dims=1)
    return tf.gather(shifted, cols, axis=2, batch_dims=1)


def pre_augment(images: tf.Tensor, seed: tf.Tensor,
                config: AugmentConfig = AugmentConfig()) -> tf.Tensor:
    """Random translation and colour jitter applied to every training image (uint8 images are
    scaled to float32 [0, 1] first)."""
    images = color.as_float_images(images)
    height, width = images.shape[1], images.shape[2]
    batch = tf.shape(images)[0]
    seeds = sampling.split(seed, 2)
    if config.translate > 0:
        images = apply_translation(
            images, sample_translation(seeds[0], batch, height, width, config.translate))
    if max(config.jitter) > 0:
        images = color.color_jitter(images, seeds[1], config.jitter)
    return images


def make_views(images: tf.Tensor, seed: tf.Tensor, task: str,
               config: AugmentConfig = AugmentConfig(), pre: bool = True,
               scar_scale_size: Optional[Sequence[int]] = None) -> tuple[tf.Tensor, tf.Tensor]:
    """Turns ``[B, H, W, 3]`` source images into ``[B * V, H, W, 3]`` views and int32 labels.

    Images are float in [0, 1] or uint8 in 0..255 (scaled to [0, 1]); views are float32.

    Views are grouped by kind: all normal views first, then all views of class 1, and so on.
    Static H and W are required (they fix the sampling ranges). ``scar_scale_size`` is the
    image size scars (and Confetti blobs) scale with (default: H, W; patch training passes the
    full image's size). The rotation task needs square images.
    """
    if task not in TASK_VIEWS:
        raise ValueError(f"unknown task {task!r}; choose from {sorted(TASK_VIEWS)}")
    if task == "rotation" and images.shape[1] != images.shape[2]:
        raise ValueError(f"task 'rotation' needs square images (a quarter turn swaps height and "
                         f"width), got {images.shape[1]}x{images.shape[2]}")
    with sampling.materializing():
        return _make_views(images, seed, task, config, pre, scar_scale_size)


def _make_views(images, seed, task, config, pre, scar_scale_size):
    images = tf.cast(color.as_float_images(images), tf.float32)  # uint8 0..255 -> [0, 1]
    seeds = sampling.split(seed, 5)  # a prefix of split(seed, 4): older tasks draw as before
    if pre:
        source = images
        # Computed once and kept, not recomputed inside each view's XLA fusion.
        images = sampling.materialized(lambda: pre_augment(source, seeds[0], config), seeds[0],
                                     source)
    batch = tf.shape(images)[0]
    labels = tf.repeat(tf.range(len(TASK_VIEWS[task]), dtype=tf.int32), batch)
    if all(kind in _PATCH_KINDS for kind in TASK_VIEWS[task]):
        # Every view is the image or the image with a patch: one copy per view, one scatter.
        patches = [_patch(kind, images, seeds, config, scar_scale_size)
                   for kind in TASK_VIEWS[task]]
        return cutpaste.paste_views(images, patches), labels
    views = []
    for kind in TASK_VIEWS[task]:
        if kind in _PATCH_KINDS:
            views.append(cutpaste.paste_views(
                images, [_patch(kind, images, seeds, config, scar_scale_size)]))
        else:
            views.append(baselines.make_view(kind, images, seeds[4], config, scar_scale_size))
    return tf.concat(views, axis=0), labels


_PATCH_KINDS = ("normal", "cutpaste", "scar", "union")


def _patch(kind, images, seeds, config, scar_scale_size):
    """The patch (index, values) a view of this kind pastes, or None for the image itself.
    Union: CutPaste or Scar per example with equal probability."""
    if kind == "normal":
        return None
    if kind == "cutpaste":
        return _cutpaste_patch(images, seeds[1], config)
    if kind == "scar":
        return _scar_patch(images, seeds[2], config, scar_scale_size)
    coin = sampling.uniform([tf.shape(images)[0]], seeds[3]) < 0.5
    return cutpaste.choose_patch(coin, _cutpaste_patch(images, seeds[1], config),
                                 _scar_patch(images, seeds[2], config, scar_scale_size))


def _cutpaste_patch(images, seed, config):
    params = cutpaste.sample_cutpaste(seed, tf.shape(images)[0], images.shape[1],
                                      images.shape[2], config)
    return cutpaste.cutpaste_patch(images, params, config)


def _scar_patch(images, seed, config, scale_size):
    params = cutpaste.sample_scar(seed, tf.shape(images)[0], images.shape[1], images.shape[2],
                                  config, scale_size)
    return cutpaste.scar_patch(images, params, config, scale_size)
