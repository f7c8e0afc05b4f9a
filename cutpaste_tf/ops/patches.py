"""Patch-level CutPaste (Sec. 2.4, Eq. 3): crop a random patch, then make the proxy-task views.

The patch model of the paper is trained on 64x64 crops of 256x256 images: every source image is
pre-augmented whole (translation and colour jitter, Sec. 2.1), a random crop is cut from it, and
the crop becomes the views of the proxy task (normal, CutPaste, Scar) exactly as a whole image
would. CutPaste's patch area is a fraction of the *crop* (the crop is the image the classifier
sees); CutPaste-Scar's sizes are pixels at the *full* image's scale, so a scar in a crop is as
wide as in the whole image.

Like the other ops: sample-then-apply, a gather per axis, counter-based randomness
(:mod:`cutpaste_tf.ops.sampling`), so it runs eagerly, in ``tf.data`` and under XLA.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from cutpaste_tf.config import AugmentConfig
from cutpaste_tf.ops import sampling, tasks


def sample_crop(seed: tf.Tensor, batch_size, height: int, width: int,
                crop_size: Sequence[int]) -> dict[str, tf.Tensor]:
    """Top-left corners ``y``, ``x`` (int32 ``[B]``) of crops uniform over every position."""
    crop_h, crop_w = int(crop_size[0]), int(crop_size[1])
    if not (0 < crop_h <= height and 0 < crop_w <= width):
        raise ValueError(f"crop size {crop_h}x{crop_w} must fit the {height}x{width} image")
    seeds = sampling.split(seed, 2)
    return {
        "y": sampling.uniform([batch_size], seeds[0], 0, height - crop_h + 1, tf.int32),
        "x": sampling.uniform([batch_size], seeds[1], 0, width - crop_w + 1, tf.int32),
    }


def apply_crop(images: tf.Tensor, params: dict[str, tf.Tensor],
               crop_size: Sequence[int]) -> tf.Tensor:
    """``[B, H, W, C]`` -> ``[B, crop_h, crop_w, C]`` cut at each example's (y, x)."""
    crop_h, crop_w = int(crop_size[0]), int(crop_size[1])
    rows = params["y"][:, None] + tf.range(crop_h)[None, :]
    cols = params["x"][:, None] + tf.range(crop_w)[None, :]
    out = tf.gather(images, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


def random_crop(images: tf.Tensor, seed: tf.Tensor, crop_size: Sequence[int]) -> tf.Tensor:
    """Samples and applies a random crop per example; needs static H and W."""
    height, width = images.shape[1], images.shape[2]
    params = sample_crop(seed, tf.shape(images)[0], height, width, crop_size)
    return apply_crop(images, params, crop_size)


def make_patch_views(images: tf.Tensor, seed: tf.Tensor, task: str, crop_size: Sequence[int],
                     config: AugmentConfig = AugmentConfig()) -> tuple[tf.Tensor, tf.Tensor]:
    """``[B, H, W, 3]`` full images -> ``[B * V, crop_h, crop_w, 3]`` patch views and labels.

    Pre-augmentation of the full image, one random crop per source image, then
    :func:`cutpaste_tf.ops.tasks.make_views` on the crops (views grouped by class, as there),
    with scars scaled for the full H x W.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    height, width = images.shape[1], images.shape[2]
    if height is None or width is None:
        raise ValueError("make_patch_views needs static image height and width")
    seeds = sampling.split(seed, 3)
    images = tasks.pre_augment(images, seeds[0], config)
    crops = random_crop(images, seeds[1], crop_size)
    return tasks.make_views(crops, seeds[2], task, config, pre=False,
                            scar_scale_size=(height, width))
