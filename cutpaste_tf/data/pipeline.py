"""tf.data pipelines: decoding, the one preprocessing function, training and evaluation input.

:func:`preprocess` is the single definition of how an image becomes model input: resized in
float with antialiased bilinear interpolation and rounded back to 8 bits (:func:`resize_uint8`),
then scaled to float32 in [0, 1] (:func:`to_float`). Training caches the 8-bit form
(:func:`resize_uint8`) and scales it with the same :func:`to_float`; evaluation, the density
fit and the exported SavedModel call :func:`preprocess`. So for the same file the model sees
bit-identical inputs in training, evaluation and serving.
"""

from __future__ import annotations

from typing import Optional, Sequence

import tensorflow as tf

from cutpaste_tf.config import TASK_VIEWS, AugmentConfig
from cutpaste_tf.ops import patches, tasks

AUTOTUNE = tf.data.AUTOTUNE
INV_255 = 1.0 / 255.0  # as float32: 0.003921568859..., and 255 * it rounds to exactly 1.0


def decode(contents: tf.Tensor) -> tf.Tensor:
    """PNG / JPEG / BMP bytes -> uint8 [H, W, 3]; grey becomes RGB, alpha is dropped.

    16-bit PNGs are scaled to 8 bits (65535 -> 255, not clipped), palette PNGs are expanded to
    their colours. ``cutpaste_tf.data.validate`` checks every file with this same decoder
    before training, and tests each of these conversions.
    """
    image = tf.io.decode_image(contents, channels=3, dtype=tf.uint8, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def _levels(values: tf.Tensor) -> tf.Tensor:
    """Float values on the 0..255 scale -> uint8: clipped, rounded to the nearest integer
    (halves to even)."""
    return tf.cast(tf.round(tf.clip_by_value(values, 0.0, 255.0)), tf.uint8)


def to_uint8(images: tf.Tensor) -> tf.Tensor:
    """Float images in [0, 1] -> uint8 (times 255, then :func:`_levels`)."""
    return _levels(tf.cast(images, tf.float32) * 255.0)


def to_float(images: tf.Tensor) -> tf.Tensor:
    """uint8 images -> float32 in [0, 1]: the model's input.

    A multiplication by the float32 reciprocal of 255, not a division: TensorFlow's graph
    optimizer rewrites a division by a constant into that multiplication in some graphs (the
    exported SavedModel's) and not in others (eager code, tf.data), which would make the same
    pixel differ in its last bit between serving and evaluation.
    """
    return tf.cast(images, tf.float32) * INV_255


def resize_uint8(images: tf.Tensor, image_size: Sequence[int]) -> tf.Tensor:
    """uint8 (0..255) or float (0..1) images, [H, W, 3] or [B, H, W, 3] -> uint8 at
    ``image_size``: resized in float on the 0..255 scale (bilinear, antialiased), then rounded
    to the nearest level (halves to even) and clipped."""
    if images.dtype == tf.uint8:
        images = tf.cast(images, tf.float32)
    else:
        images = tf.cast(images, tf.float32) * 255.0
    return _levels(tf.image.resize(images, list(image_size), method="bilinear", antialias=True))


def preprocess(images: tf.Tensor, image_size: Sequence[int]) -> tf.Tensor:
    """uint8 (0..255) or float (0..1) images, [H, W, 3] or [B, H, W, 3] -> float32 model input
    (:func:`resize_uint8`, then :func:`to_float`)."""
    return to_float(resize_uint8(images, image_size))


def load_image_uint8(path: tf.Tensor, image_size: Sequence[int]) -> tf.Tensor:
    """Reads, decodes and resizes one image file to uint8 (the training cache's form)."""
    return resize_uint8(decode(tf.io.read_file(path)), image_size)


def load_image(path: tf.Tensor, image_size: Sequence[int]) -> tf.Tensor:
    """Reads, decodes and preprocesses one image file."""
    return to_float(load_image_uint8(path, image_size))


def train_dataset(files: Sequence[str], image_size: Sequence[int], task: str, batch_size: int,
                  seed: int, augment: AugmentConfig = AugmentConfig(), start_step: int = 0,
                  augment_in_pipeline: bool = True, pipeline: tuple[int, int] = (0, 1),
                  batches_per_step: int = 1,
                  crop_size: Optional[Sequence[int]] = None,
                  jit_augment: bool = False) -> tf.data.Dataset:
    """Batches of ``(views, labels)`` for the proxy task, endless.

    Images are decoded and resized once and cached as uint8; then shuffled, repeated, batched
    with ``drop_remainder`` (``batch_size / V`` source images per batch for ``V`` views) and
    augmented as whole batches. Batch ``n`` is augmented with seed ``(seed, n)``, so a run
    resumed at ``start_step`` continues with the augmentations it would have drawn.

    For distributed training, ``pipeline = (id, count)`` names this worker's input pipeline
    (its batch ``n`` uses seed ``(seed, n * count + id)``, so no two pipelines draw the same
    augmentations) and ``batches_per_step`` is how many batches one step takes from it (its
    local replicas); ``batch_size`` is then the per-replica batch.

    With ``augment_in_pipeline=False`` the batches hold the uint8 source images and their seed
    number instead, for augmenting on the accelerator (see :func:`augment_batch`).

    With ``crop_size`` the views are random crops of that size (patch training, Sec. 2.4).

    ``jit_augment`` compiles the augmentation with XLA on the host: on a 2-core CPU about twice
    the views per second at 256x256 (it fuses the colour jitter's per-pixel stages); the same
    random draws, pixels equal to the graph's up to float rounding.
    """
    if task not in TASK_VIEWS:
        raise ValueError(f"unknown task {task!r}; choose from {sorted(TASK_VIEWS)}")
    num_views = len(TASK_VIEWS[task])
    if batch_size % num_views:
        raise ValueError(f"batch_size {batch_size} is not a multiple of {num_views} views")
    pipeline_id, num_pipelines = pipeline
    sources = batch_size // num_views
    size = tuple(image_size)
    ds = tf.data.Dataset.from_tensor_slices(list(files))
    ds = ds.map(lambda p: load_image_uint8(p, size), num_parallel_calls=AUTOTUNE,
                deterministic=True)
    ds = ds.cache()
    ds = ds.shuffle(len(files), seed=seed + 7919 * pipeline_id, reshuffle_each_iteration=True)
    ds = ds.repeat().batch(sources, drop_remainder=True)
    ds = ds.enumerate(start=start_step * batches_per_step)
    ds = ds.map(lambda n, x: (n * num_pipelines + pipeline_id, x))
    if augment_in_pipeline:
        def views(n, x):
            return augment_batch(x, n, seed, task, augment, crop_size)

        if jit_augment:
            views = tf.function(views, jit_compile=True)
        ds = ds.map(views, num_parallel_calls=AUTOTUNE, deterministic=True)
    else:
        ds = ds.map(lambda n, x: (x, n))
    return ds.prefetch(AUTOTUNE)


def augment_batch(images: tf.Tensor, step: tf.Tensor, seed: int, task: str,
                  augment: AugmentConfig = AugmentConfig(),
                  crop_size: Optional[Sequence[int]] = None) -> tuple[tf.Tensor, tf.Tensor]:
    """uint8 source images of one step -> (float32 views, int32 labels); patch views of
    ``crop_size`` if given."""
    images = to_float(images)
    step_seed = tf.stack([tf.cast(seed, tf.int64), tf.cast(step, tf.int64)])
    if crop_size is not None:
        return patches.make_patch_views(images, step_seed, task, crop_size, augment)
    return tasks.make_views(images, step_seed, task, augment)


def eval_dataset(files: Sequence[str], image_size: Sequence[int],
                 batch_size: int = 32) -> tf.data.Dataset:
    """Batches of preprocessed images, in file order, without augmentation."""
    size = tuple(image_size)
    ds = tf.data.Dataset.from_tensor_slices(list(files))
    ds = ds.map(lambda p: load_image(p, size), num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(AUTOTUNE)
