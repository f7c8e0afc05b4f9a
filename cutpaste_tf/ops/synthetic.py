"""Synthetic anomalies of Sec. 5.3 (Table 6): a digit, square, ellipse or heart pasted onto an
image, filled with a random colour or with a patch of a "natural" image.

Split like :mod:`cutpaste_tf.ops.cutpaste` into "sample the parameters" and "apply them"; the
apply step is coordinates, an implicit equation (or a gather from a digit template), a mask and
``tf.where`` over the whole batch, so it runs eagerly, in ``tf.data`` and under XLA.

The paper states only the shapes and the two fills. Our choices (see
:class:`SyntheticConfig`): the shape's box covers U(0.02, 0.15) of the image
area (CutPaste's range), squares, hearts and digits have square boxes, ellipses an axis ratio
log-uniform on (0.5, 2); every shape is rotated by U(-45, 45) degrees about its centre and lies
wholly inside the image. A colour fill is one uniform RGB colour per shape. A natural fill is
the region of the same shape (rotated with it) at a random place of a random source image,
the source images being the same size as the images. Digits are scikit-learn's 8x8
``load_digits`` glyphs, upscaled bilinearly and thresholded (:func:`digit_templates`, called
outside traced code), sampled nearest-neighbour.

Heart: the implicit curve ``(x^2 + y^2 - 1)^3 - x^2 y^3 <= 0``, which spans
x in [-1.139, 1.139] and y in [-1, 1.236]; it is stretched to fill its box, lobes up.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

import numpy as np
import tensorflow as tf

from cutpaste_tf import config as config_lib
from cutpaste_tf.ops import color, sampling

_HEART_X = 1.139  # half width of the heart curve
_HEART_Y = (-1.0, 1.236)  # its bottom tip and the top of its lobes


# Synthetic anomalies (Sec. 5.3, Table 6): the shapes and fills of the benchmark.
SYNTHETIC_SHAPES = ("digit", "square", "ellipse", "heart")
SYNTHETIC_FILLS = ("color", "natural")


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """Sizes of the synthetic anomalies; the paper gives none, so these are our choices.

    The shape's box covers ``area_ratio`` of the image (CutPaste's range), ellipses have an
    axis ratio log-uniform in ``ellipse_aspect`` (squares, hearts and digits are square boxes),
    every shape is rotated by U(-angle, angle) degrees and lies wholly inside the image.
    """

    area_ratio: tuple[float, float] = (0.02, 0.15)
    ellipse_aspect: tuple[float, float] = (0.5, 2.0)
    angle: float = 45.0
    digit_size: int = 32  # side of the upscaled digit templates (load_digits is 8x8)

    def __post_init__(self):
        config_lib.check_range("area_ratio", self.area_ratio, 1e-4, 0.5)
        config_lib.check_range("ellipse_aspect", self.ellipse_aspect, 0.1, 10.0)
        if not 0.0 <= self.angle <= 180.0:
            raise ValueError(f"angle must be in [0, 180] degrees, got {self.angle}")
        if self.digit_size < 8:
            raise ValueError(f"digit_size must be at least 8, got {self.digit_size}")


def digit_templates(size: int = 32, limit: Optional[int] = None) -> np.ndarray:
    """scikit-learn's bundled digit glyphs (8x8, no download) as binary float32 masks
    ``[K, size, size]``: upscaled bilinearly, then thresholded at half the full ink level."""
    from sklearn.datasets import load_digits

    glyphs = load_digits().images[:limit].astype(np.float32) / 16.0  # 0..16 ink -> [0, 1]
    big = tf.image.resize(glyphs[..., None], [size, size], method="bilinear")[..., 0].numpy()
    return (big > 0.5).astype(np.float32)


def check_kind(shape: str, fill: str) -> None:
    """Raises ValueError unless ``shape`` and ``fill`` are known."""
    if shape not in SYNTHETIC_SHAPES:
        raise ValueError(f"unknown synthetic shape {shape!r}; choose from {SYNTHETIC_SHAPES}")
    if fill not in SYNTHETIC_FILLS:
        raise ValueError(f"unknown synthetic fill {fill!r}; choose from {SYNTHETIC_FILLS}")


def sample_synthetic(seed: tf.Tensor, batch_size, height: int, width: int, shape: str,
                     num_digits: int = 1, num_sources: int = 1,
                     config: SyntheticConfig = SyntheticConfig()) -> dict[str, tf.Tensor]:
    """Draws one synthetic anomaly per image.

    Returns float32 ``[B]`` tensors ``box_h``, ``box_w`` (pixels), ``angle`` (radians), centres
    ``cy``, ``cx`` and natural-patch centres ``src_cy``, ``src_cx`` (pixel units, the image
    spanning [0, H] x [0, W]), ``area_ratio`` as drawn, ``color`` ``[B, 3]``, and int32 ``[B]``
    ``digit`` and ``source`` (indices into the digit templates and the source images).
    """
    check_kind(shape, "color")
    seeds = sampling.split(seed, 5)
    u = sampling.uniform([3, batch_size], seeds[0])
    lo, hi = config.area_ratio
    area = lo + u[0] * (hi - lo)
    aspect = tf.ones_like(area)
    if shape == "ellipse":
        a_lo, a_hi = (math.log(a) for a in config.ellipse_aspect)
        aspect = tf.exp(a_lo + u[1] * (a_hi - a_lo))
    side = tf.sqrt(area * float(height * width))
    box_h, box_w = side * tf.sqrt(aspect), side / tf.sqrt(aspect)
    angle = (u[2] * 2.0 - 1.0) * (config.angle * math.pi / 180.0)
    cos, sin = tf.abs(tf.cos(angle)), tf.abs(tf.sin(angle))
    # Shrink the rare box whose rotated bounding box would not fit (very elongated images).
    fit = tf.minimum(1.0, tf.minimum(height / (sin * box_w + cos * box_h),
                                     width / (cos * box_w + sin * box_h)))
    box_h, box_w = box_h * fit, box_w * fit
    half_y = 0.5 * (sin * box_w + cos * box_h)
    half_x = 0.5 * (cos * box_w + sin * box_h)
    c = sampling.uniform([4, batch_size], seeds[1])
    return {
        "box_h": box_h,
        "box_w": box_w,
        "angle": angle,
        "cy": half_y + c[0] * (height - 2.0 * half_y),
        "cx": half_x + c[1] * (width - 2.0 * half_x),
        # The unrotated box lies inside the source image (the region read is rotated with the
        # shape and may reach past the box corners; coordinates are clipped to the image).
        "src_cy": 0.5 * box_h + c[2] * (height - box_h),
        "src_cx": 0.5 * box_w + c[3] * (width - box_w),
        "area_ratio": area,
        "color": sampling.uniform([batch_size, 3], seeds[2]),
        "digit": sampling.uniform([batch_size], seeds[3], 0, num_digits, tf.int32),
        "source": sampling.uniform([batch_size], seeds[4], 0, num_sources, tf.int32),
    }


def _frame(params: dict[str, tf.Tensor], height: int, width: int):
    """Per pixel: coordinates in the shape's frame (pixels, ``dv`` down, ``du`` right) and in
    its box normalised to [-1, 1]; all ``[B, H, W]``."""
    def col(t):
        return t[:, None, None]

    ys = tf.cast(tf.range(height), tf.float32)[None, :, None] + 0.5
    xs = tf.cast(tf.range(width), tf.float32)[None, None, :] + 0.5
    dy, dx = ys - col(params["cy"]), xs - col(params["cx"])
    cos, sin = col(tf.cos(params["angle"])), col(tf.sin(params["angle"]))
    du = cos * dx + sin * dy  # rotate the offset back by -angle
    dv = -sin * dx + cos * dy
    return du, dv, du / (0.5 * col(params["box_w"])), dv / (0.5 * col(params["box_h"]))


def synthetic_mask(params: dict[str, tf.Tensor], shape: str, height: int, width: int,
                   digits: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Boolean ``[B, H, W]``: the pixels (by their centres) that the shapes cover."""
    check_kind(shape, "color")
    _, _, u, v = _frame(params, height, width)
    in_box = (tf.abs(u) < 1.0) & (tf.abs(v) < 1.0)
    if shape == "square":
        return in_box
    if shape == "ellipse":
        return u * u + v * v < 1.0
    if shape == "heart":
        x = u * _HEART_X
        y = _HEART_Y[1] - (v + 1.0) * (0.5 * (_HEART_Y[1] - _HEART_Y[0]))  # v = -1 is the top
        r = x * x + y * y - 1.0
        return in_box & (r * r * r - x * x * y * y * y <= 0.0)
    if digits is None:
        raise ValueError("digit shapes need the digit templates (digit_templates())")
    digits = tf.convert_to_tensor(digits, tf.float32)
    size_y, size_x = digits.shape[1], digits.shape[2]
    rows = tf.clip_by_value(tf.cast(tf.floor((v + 1.0) * (0.5 * size_y)), tf.int32), 0, size_y - 1)
    cols = tf.clip_by_value(tf.cast(tf.floor((u + 1.0) * (0.5 * size_x)), tf.int32), 0, size_x - 1)
    glyphs = tf.reshape(tf.gather(digits, params["digit"]), [-1, size_y * size_x])
    index = tf.reshape(rows * size_x + cols, [-1, height * width])
    ink = tf.reshape(tf.gather(glyphs, index, axis=1, batch_dims=1), [-1, height, width])
    return in_box & (ink > 0.5)


def apply_synthetic(images: tf.Tensor, params: dict[str, tf.Tensor], shape: str, fill: str,
                    digits: Optional[tf.Tensor] = None,
                    sources: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Pastes each image's shape with its fill; pixels outside the shape are unchanged.

    ``images`` float ``[B, H, W, 3]`` in [0, 1] (uint8 is scaled first); ``sources`` (natural
    fill) ``[N, H, W, 3]`` of the same size and range.
    """
    check_kind(shape, fill)
    images = tf.cast(color.as_float_images(images), tf.float32)
    height, width = images.shape[1], images.shape[2]
    mask = synthetic_mask(params, shape, height, width, digits)
    if fill == "color":
        paint = tf.broadcast_to(params["color"][:, None, None, :], tf.shape(images))
    else:
        if sources is None:
            raise ValueError("a natural fill needs source images")
        sources = tf.cast(color.as_float_images(sources), tf.float32)
        if sources.shape[1:3] != images.shape[1:3]:
            raise ValueError(f"source images are {sources.shape[1]}x{sources.shape[2]}, the "
                             f"images {height}x{width}; resize them to the same size")
        du, dv, _, _ = _frame(params, height, width)
        src_y = tf.clip_by_value(
            tf.cast(tf.floor(params["src_cy"][:, None, None] + dv), tf.int32), 0, height - 1)
        src_x = tf.clip_by_value(
            tf.cast(tf.floor(params["src_cx"][:, None, None] + du), tf.int32), 0, width - 1)
        flat = tf.reshape(tf.gather(sources, params["source"]), [-1, height * width, 3])
        index = tf.reshape(src_y * width + src_x, [-1, height * width])
        paint = tf.reshape(tf.gather(flat, index, axis=1, batch_dims=1), tf.shape(images))
    return tf.where(mask[..., None], paint, images)


def synthesize(images: tf.Tensor, seed: tf.Tensor, shape: str, fill: str,
               digits: Optional[tf.Tensor] = None, sources: Optional[tf.Tensor] = None,
               config: SyntheticConfig = SyntheticConfig()) -> tf.Tensor:
    """Samples and applies one synthetic anomaly per image; needs static H and W."""
    check_kind(shape, fill)
    images = tf.cast(color.as_float_images(images), tf.float32)
    num_digits = 1 if digits is None else int(digits.shape[0])
    num_sources = 1 if sources is None else int(sources.shape[0])
    params = sample_synthetic(seed, tf.shape(images)[0], images.shape[1], images.shape[2], shape,
                              num_digits, num_sources, config)
    return apply_synthetic(images, params, shape, fill, digits, sources)
