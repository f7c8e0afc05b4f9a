"""Colour jitter with torchvision's semantics, batched, stateless and XLA-compilable.

torchvision's ``ColorJitter(b, c, s, h)`` draws a brightness, contrast and saturation factor
from ``U[max(0, 1 - x), 1 + x]`` and a hue shift from ``U[-h, h]``, then applies the four
operations in a random order:

* brightness: ``clip(f * x)`` (multiplicative),
* contrast: ``clip(f * x + (1 - f) * mean(gray(x)))`` (the mean is over the image it is given;
  for CutPaste that is the patch),
* saturation: ``clip(f * x + (1 - f) * gray(x))`` (a blend with the grey image, not HSV),
* hue: ``h <- (h + delta) mod 1`` in HSV.

Here every example of a batch draws its own factors and its own order. Brightness, contrast and
saturation are all of the form ``clip(a * x + b * gray(x) + c)`` with per-example coefficients,
so one fused affine stage applies whichever of them an example needs at that position; hue is
applied exactly once per example, between the ops an example runs before it and those after.
Images are float32 in [0, 1], shape ``[B, H, W, 3]``.
"""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

from cutpaste_tf.ops import sampling

BRIGHTNESS, CONTRAST, SATURATION, HUE = 0, 1, 2, 3
_GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale


def as_float_images(images) -> tf.Tensor:
    """Images as a float tensor in [0, 1]: uint8 (0..255) is scaled to float32, floats pass.

    Any other integer type is refused: read as floats, 0..255 values would be clipped to 1 and
    the augmentations would silently turn the images white.
    """
    images = tf.convert_to_tensor(images)
    if images.dtype == tf.uint8:
        return tf.cast(images, tf.float32) / 255.0
    if not images.dtype.is_floating:
        raise TypeError(f"images must be uint8 (0..255) or float (0..1), got {images.dtype.name}")
    return images


def rgb_to_grayscale(images: tf.Tensor) -> tf.Tensor:
    """Luma as torchvision computes it, keeping a channel axis: [..., 3] -> [..., 1]."""
    # Three slices beat a reduction over a size-3 minor axis under XLA on CPU (about 2x).
    r, g, b = images[..., 0:1], images[..., 1:2], images[..., 2:3]
    return _GRAY_WEIGHTS[0] * r + _GRAY_WEIGHTS[1] * g + _GRAY_WEIGHTS[2] * b


def sample_jitter(seed: tf.Tensor, batch_size, strength) -> dict[str, tf.Tensor]:
    """Draws per-example jitter factors and an operation order.

    Args:
      seed: int32/int64 tensor of shape [2] for the stateless generators.
      batch_size: number of examples (int or scalar tensor).
      strength: one float for all four operations, or a (brightness, contrast, saturation,
        hue) tuple, as torchvision's ``ColorJitter`` arguments.

    Returns:
      A dict of float32 ``brightness``, ``contrast``, ``saturation``, ``hue`` of shape [B]
      and an int32 ``order`` of shape [B, 4], each row a permutation of the four op ids.
    """
    b, c, s, h = _strengths(strength)
    seeds = sampling.split(seed, 5)

    def factor(i, x):
        return sampling.uniform([batch_size], seeds[i], max(0.0, 1.0 - x), 1.0 + x)

    keys = sampling.uniform([batch_size, 4], seeds[4])
    return {
        "brightness": factor(0, b),
        "contrast": factor(1, c),
        "saturation": factor(2, s),
        "hue": sampling.uniform([batch_size], seeds[3], -h, h),
        "order": tf.argsort(keys, axis=-1, stable=True),
    }


def apply_jitter(images: tf.Tensor, params: dict[str, tf.Tensor],
                 mask: Optional[tf.Tensor] = None, use_hue: bool = True) -> tf.Tensor:
    """Applies sampled jitter to a batch; deterministic given ``params``.

    Args:
      images: float [B, H, W, 3] in [0, 1].
      params: output of :func:`sample_jitter`.
      mask: optional bool/float [B, H, W]; the contrast mean is taken over the masked pixels
        only (torchvision takes it over the patch it jitters). Pixels outside the mask are
        still transformed; callers select the masked region afterwards.
      use_hue: False skips the HSV round trip (for a hue strength of 0).
    """
    order = tf.convert_to_tensor(params["order"])
    hue_position = tf.argmax(tf.cast(tf.equal(order, HUE), tf.int32), axis=-1,
                             output_type=order.dtype)[:, None]
    weights = None if mask is None else tf.cast(mask, images.dtype)[..., None]
    x = images
    if not use_hue:  # three stages: the affine ops in their drawn order, hue left out
        last = tf.argsort(tf.cast(tf.equal(order, HUE), tf.int32), axis=-1, stable=True)
        order = tf.gather(order, last, batch_dims=1)
        for k in range(3):
            x = _affine_stage(x, order[:, k], params, weights)
        return x
    # The ops an example runs before its hue shift (positions 0-2), the shift, then the rest
    # (positions 1-3). An op id of HUE in a stage means "leave this example alone".
    for k in range(3):
        x = _affine_stage(x, tf.where(k < hue_position[:, 0], order[:, k], HUE), params, weights)
    if use_hue:
        x = adjust_hue(x, params["hue"])
    for k in range(1, 4):
        x = _affine_stage(x, tf.where(k > hue_position[:, 0], order[:, k], HUE), params, weights)
    return x


def _affine_stage(x: tf.Tensor, op: tf.Tensor, params: dict[str, tf.Tensor],
                  weights: Optional[tf.Tensor]) -> tf.Tensor:
    """Applies brightness, contrast or saturation per example (op id per row), or nothing."""
    gray = rgb_to_grayscale(x)
    if weights is None:
        mean = tf.reduce_mean(gray, axis=[1, 2, 3])
    else:
        area = tf.maximum(tf.reduce_sum(weights, axis=[1, 2, 3]), 1.0)
        mean = tf.reduce_sum(gray * weights, axis=[1, 2, 3]) / area
    one, zero = tf.ones_like(mean), tf.zeros_like(mean)
    fb, fc, fs = params["brightness"], params["contrast"], params["saturation"]
    is_b, is_c, is_s = (tf.equal(op, i) for i in (BRIGHTNESS, CONTRAST, SATURATION))
    a = tf.where(is_b, fb, tf.where(is_c, fc, tf.where(is_s, fs, one)))
    g = tf.where(is_s, 1.0 - fs, zero)
    c = tf.where(is_c, (1.0 - fc) * mean, zero)
    y = a[:, None, None, None] * x + g[:, None, None, None] * gray + c[:, None, None, None]
    return tf.clip_by_value(y, 0.0, 1.0)


def adjust_hue(images: tf.Tensor, delta: tf.Tensor) -> tf.Tensor:
    """Shifts hue by a per-example ``delta`` (fraction of a turn), as torchvision does."""
    hsv = tf.image.rgb_to_hsv(images)
    hue = tf.math.floormod(hsv[..., 0] + delta[:, None, None], 1.0)
    return tf.image.hsv_to_rgb(tf.stack([hue, hsv[..., 1], hsv[..., 2]], axis=-1))


def color_jitter(images: tf.Tensor, seed: tf.Tensor, strength,
                 mask: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Samples and applies jitter in one call (see :func:`sample_jitter`); uint8 images are
    scaled to float32 [0, 1] first."""
    images = as_float_images(images)
    params = sample_jitter(seed, tf.shape(images)[0], strength)
    return apply_jitter(images, params, mask, use_hue=_strengths(strength)[3] > 0)


def _strengths(strength) -> tuple[float, float, float, float]:
    """Normalises a jitter strength to four floats and checks torchvision's limits."""
    if isinstance(strength, (int, float)):
        values = (float(strength),) * 4
    else:
        values = tuple(float(v) for v in strength)
        if len(values) != 4:
            raise ValueError(f"jitter strength needs 1 or 4 values, got {strength!r}")
    if min(values) < 0 or values[3] > 0.5:
        raise ValueError(
            f"jitter strengths must be >= 0 and hue <= 0.5 (torchvision's limits), got {values}")
    return values
