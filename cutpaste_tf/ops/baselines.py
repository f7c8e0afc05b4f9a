"""Baseline proxy tasks of Table 1 and Table 4: rotation, Cutout, the Cutout-style Scar, Confetti.

Like :mod:`cutpaste_tf.ops.cutpaste`: batches ``[B, H, W, 3]`` float32 in [0, 1] (the one-call
helpers also take uint8), "sample parameters" then "apply them", counter-hash randomness, and an
apply step made of coordinates, a mask and ``tf.where``, so it runs eagerly, in ``tf.data`` and
under ``tf.function(jit_compile=True)``.

* Rotation (Table 1, after Gidaris et al.): view k is the image turned by ``k * 90`` degrees
  counter-clockwise (as ``np.rot90``); square images only.
* Cutout (Tables 1 and 4): one box with exactly CutPaste's destination-box distribution (area
  ``U(0.02, 0.15)`` of the image, aspect log-uniform on (0.3, 3.3), wholly inside) filled with
  grey 0.5 ("standard"), with the image's per-channel mean colour ("mean"), or with one uniform
  random RGB colour per box ("color").
* Scar (Table 1, the Cutout-style scar): CutPaste-Scar's rotated rectangle (width, length, angle
  and position drawn by :func:`cutpaste.sample_scar`) filled with one random RGB colour.
* Confetti noise (Table 4, from FCDD, Liznerski et al. 2021): a few rotated square blobs added to
  the image after a Gaussian blur. As FCDD's MVTec "confetti" mode: one set of blobs with a random
  RGB colour each and one set of white blobs, each set holding at least one blob (a Poisson count
  with mean 0.90 resp. 0.60, conditioned on >= 1 and capped here at 4), sides uniform over the
  integers 8..54 px, angles ``U(-45, 45)`` degrees, centres anywhere in the image (a blob may be
  cut by the border); the blob image is blurred (Gaussian, sigma 5 px, 25 px kernel), added and
  clipped; where that changes the image by less than 0.025/255 on average (a white image) it is
  subtracted instead. FCDD's sizes are pixels at its 224x224 MVTec inputs: here they scale with
  ``sqrt(H * W) / 224`` (of ``scale_size``, the full image for patch training) so blobs keep
  their share of the image.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import tensorflow as tf

from cutpaste_tf.config import AugmentConfig
from cutpaste_tf.ops import color, cutpaste, sampling

GREY = 0.5
CUTOUT_FILLS = ("grey", "mean", "color")

CONFETTI_REFERENCE_SIZE = 224  # FCDD's MVTec AD input size; the sizes below are pixels there.
CONFETTI_SIDES = (8, 54)  # blob side, uniform over these integers (inclusive)
CONFETTI_RATES = (0.000018 * 224 ** 2, 0.000012 * 224 ** 2)  # coloured, white: Poisson means
CONFETTI_MAX_BLOBS = 4  # per set; P(more | >= 1) is 0.4% for the coloured set
CONFETTI_ANGLE = 45.0
CONFETTI_BLUR = (12, 5.0)  # Gaussian radius (25 px kernel) and sigma
CONFETTI_INVERT_BELOW = 0.025 / 255.0


# =============================================================================================
# Rotation.


def rotate(images: tf.Tensor, quarter_turns: int) -> tf.Tensor:
    """Turns every image by ``quarter_turns * 90`` degrees counter-clockwise; needs H == W."""
    height, width = images.shape[1], images.shape[2]
    if height != width:
        raise ValueError(f"rotation needs square images (a quarter turn swaps height and width), "
                         f"got {height}x{width}")
    k = quarter_turns % 4
    if k == 1:
        return tf.reverse(tf.transpose(images, [0, 2, 1, 3]), [1])
    if k == 2:
        return tf.reverse(images, [1, 2])
    if k == 3:
        return tf.transpose(tf.reverse(images, [1]), [0, 2, 1, 3])
    return images


# =============================================================================================
# Cutout.


def sample_cutout(seed: tf.Tensor, batch_size, height: int, width: int,
                  config: AugmentConfig = AugmentConfig()) -> dict[str, tf.Tensor]:
    """Cutout boxes drawn exactly as CutPaste's destination boxes, and a random colour per box.

    Returns int32 ``[B]`` ``patch_h``, ``patch_w``, ``dst_y``, ``dst_x``, the drawn float
    ``area_ratio`` and ``aspect_ratio``, and float ``color`` ``[B, 3]`` uniform in [0, 1).
    """
    seeds = sampling.split(seed, 2)
    box = cutpaste.sample_cutpaste(seeds[0], batch_size, height, width, config)
    params = {k: box[k] for k in ("patch_h", "patch_w", "dst_y", "dst_x", "area_ratio",
                                  "aspect_ratio")}
    params["color"] = sampling.uniform([batch_size, 3], seeds[1])
    return params


def cutout_mask(params: dict[str, tf.Tensor], height: int, width: int) -> tf.Tensor:
    """Boolean ``[B, H, W]``: the pixels inside each example's box."""
    rows = tf.range(height)[None, :] - params["dst_y"][:, None]
    cols = tf.range(width)[None, :] - params["dst_x"][:, None]
    in_rows = (rows >= 0) & (rows < params["patch_h"][:, None])
    in_cols = (cols >= 0) & (cols < params["patch_w"][:, None])
    return in_rows[:, :, None] & in_cols[:, None, :]


def apply_cutout(images: tf.Tensor, params: dict[str, tf.Tensor], fill: str = "grey") -> tf.Tensor:
    """Fills each example's box with grey, the image's mean colour, or the box's random colour."""
    if fill == "grey":
        value = tf.constant(GREY, images.dtype)
    elif fill == "mean":
        # Row means, then their mean: float32 sums of at most max(H, W) terms.
        value = tf.reduce_mean(tf.reduce_mean(images, axis=2, keepdims=True), axis=1,
                               keepdims=True)
    elif fill == "color":
        value = tf.cast(params["color"], images.dtype)[:, None, None, :]
    else:
        raise ValueError(f"unknown Cutout fill {fill!r}; choose from {CUTOUT_FILLS}")
    mask = cutout_mask(params, images.shape[1], images.shape[2])
    return tf.where(mask[..., None], value, images)


def cutout(images: tf.Tensor, seed: tf.Tensor, fill: str = "grey",
           config: AugmentConfig = AugmentConfig()) -> tf.Tensor:
    """Samples and applies Cutout in one call; needs static H and W; uint8 is scaled to [0, 1]."""
    images = color.as_float_images(images)
    height, width = images.shape[1], images.shape[2]
    return apply_cutout(images, sample_cutout(seed, tf.shape(images)[0], height, width, config),
                        fill)


# =============================================================================================
# Scar (Cutout-style): CutPaste-Scar's rectangle in one random colour.


def sample_scar_cutout(seed: tf.Tensor, batch_size, height: int, width: int,
                       config: AugmentConfig = AugmentConfig(),
                       scale_size: Optional[Sequence[int]] = None) -> dict[str, tf.Tensor]:
    """CutPaste-Scar's destination rectangle (``scar_w``, ``scar_l``, ``angle``, ``dst_cy``,
    ``dst_cx``; see :func:`cutpaste.sample_scar`) and a colour ``[B, 3]`` uniform in [0, 1)."""
    seeds = sampling.split(seed, 2)
    scar = cutpaste.sample_scar(seeds[0], batch_size, height, width, config, scale_size)
    params = {k: scar[k] for k in ("scar_w", "scar_l", "angle", "dst_cy", "dst_cx")}
    params["color"] = sampling.uniform([batch_size, 3], seeds[1])
    return params


def apply_scar_cutout(images: tf.Tensor, params: dict[str, tf.Tensor]) -> tf.Tensor:
    """Paints each example's rotated rectangle (the pixel centres inside it) in its colour."""
    ys, xs = _pixel_centres(images.shape[1], images.shape[2])
    _, _, inside = cutpaste.rotated_rect(ys, xs, params["dst_cy"], params["dst_cx"],
                                         params["scar_w"], params["scar_l"], params["angle"])
    return tf.where(inside[..., None], tf.cast(params["color"], images.dtype)[:, None, None, :],
                    images)


def scar_cutout(images: tf.Tensor, seed: tf.Tensor, config: AugmentConfig = AugmentConfig(),
                scale_size: Optional[Sequence[int]] = None) -> tf.Tensor:
    """Samples and applies the Cutout-style Scar in one call; uint8 is scaled to [0, 1]."""
    images = color.as_float_images(images)
    height, width = images.shape[1], images.shape[2]
    params = sample_scar_cutout(seed, tf.shape(images)[0], height, width, config, scale_size)
    return apply_scar_cutout(images, params)


# =============================================================================================
# Confetti noise.


def confetti_scale(height: int, width: int) -> float:
    """How much to scale FCDD's blob sizes (pixels at 224x224) for an image of this size."""
    return math.sqrt(height * width) / CONFETTI_REFERENCE_SIZE


def confetti_count_probs(rate: float) -> list[float]:
    """P(count = n) for n = 1 .. CONFETTI_MAX_BLOBS: Poisson(rate) given >= 1, capped."""
    weights = [rate ** n / math.factorial(n) for n in range(1, CONFETTI_MAX_BLOBS + 1)]
    return [w / sum(weights) for w in weights]


def sample_confetti(seed: tf.Tensor, batch_size, height: int, width: int,
                    scale_size: Optional[Sequence[int]] = None) -> dict[str, tf.Tensor]:
    """Confetti blobs: ``2 * CONFETTI_MAX_BLOBS`` slots per example (coloured, then white).

    Returns int32 ``count`` ``[B, 2]`` (blobs per set), bool ``active`` ``[B, K]``, float
    ``[B, K]`` ``side`` (pixels at this size), ``angle`` (radians), centres ``cy``, ``cx`` (the
    image spanning [0, H] x [0, W]) and ``color`` ``[B, K, 3]`` (ones for the white set).
    """
    seeds = sampling.split(seed, 6)
    scale = confetti_scale(*(scale_size or (height, width)))
    slots = 2 * CONFETTI_MAX_BLOBS
    u = sampling.uniform([batch_size, 2], seeds[0])
    counts, active = [], []
    for s, rate in enumerate(CONFETTI_RATES):
        cdf = tf.constant(_cumsum(confetti_count_probs(rate))[:-1], tf.float32)
        n = 1 + tf.reduce_sum(tf.cast(u[:, s:s + 1] >= cdf[None, :], tf.int32), axis=1)
        counts.append(n)
        active.append(tf.range(CONFETTI_MAX_BLOBS)[None, :] < n[:, None])
    sides = sampling.uniform([batch_size, slots], seeds[1], CONFETTI_SIDES[0],
                           CONFETTI_SIDES[1] + 1, tf.int32)
    angle = sampling.uniform([batch_size, slots], seeds[2], -CONFETTI_ANGLE, CONFETTI_ANGLE)
    centres = sampling.uniform([2, batch_size, slots], seeds[3])
    colours = sampling.uniform([batch_size, CONFETTI_MAX_BLOBS, 3], seeds[4])
    return {
        "count": tf.stack(counts, axis=1),
        "active": tf.concat(active, axis=1),
        "side": tf.maximum(tf.cast(sides, tf.float32) * scale, 1.0),
        "angle": angle * (math.pi / 180.0),
        "cy": centres[0] * float(height),
        "cx": centres[1] * float(width),
        "color": tf.concat([colours, tf.ones_like(colours)], axis=1),
    }


def confetti_blur(height: int, width: int,
                  scale_size: Optional[Sequence[int]] = None) -> tuple[int, float]:
    """Static radius (pixels) and sigma of the blob blur at this image size."""
    scale = confetti_scale(*(scale_size or (height, width)))
    radius = min(max(1, round(CONFETTI_BLUR[0] * scale)), height - 1, width - 1)
    return radius, CONFETTI_BLUR[1] * scale


def confetti_blobs(params: dict[str, tf.Tensor], height: int, width: int) -> tf.Tensor:
    """Float ``[B, K, H, W]``: 1 where a pixel centre lies inside an active blob."""
    batch, slots = tf.shape(params["cy"])[0], params["cy"].shape[1]

    def flat(t):
        return tf.reshape(t, [-1])

    ys, xs = _pixel_centres(height, width)
    _, _, inside = cutpaste.rotated_rect(ys, xs, flat(params["cy"]), flat(params["cx"]),
                                         flat(params["side"]), flat(params["side"]),
                                         flat(params["angle"]))
    inside = tf.reshape(inside, [batch, slots, height, width])
    return tf.cast(inside & params["active"][:, :, None, None], tf.float32)


def confetti_noise(params: dict[str, tf.Tensor], height: int, width: int,
                   scale_size: Optional[Sequence[int]] = None) -> tf.Tensor:
    """The blurred blob image ``[B, H, W, 3]`` (>= 0) that :func:`apply_confetti` adds."""
    blobs = confetti_blobs(params, height, width)
    noise = tf.einsum("bkhw,bkc->bhwc", blobs, params["color"])
    radius, sigma = confetti_blur(height, width, scale_size)
    # The separable blur as two matrix products (one per axis): a depthwise convolution with
    # a 25+ tap kernel ran ~10x slower on CPU, and slower still under XLA.
    blur_y = _blur_matrix(height, radius, sigma)
    blur_x = _blur_matrix(width, radius, sigma)
    noise = tf.reshape(tf.matmul(blur_y[None], tf.reshape(noise, [-1, height, width * 3])),
                       [-1, height, width, 3])
    noise = tf.reshape(tf.transpose(noise, [0, 1, 3, 2]), [-1, width])
    noise = tf.matmul(noise, blur_x, transpose_b=True)
    return tf.transpose(tf.reshape(noise, [-1, height, 3, width]), [0, 1, 3, 2])


def _blur_matrix(size: int, radius: int, sigma: float) -> tf.Tensor:
    """``[size, size]`` matrix of a 1-D Gaussian blur with reflected borders (as a
    ``REFLECT``-padded convolution): row i holds the weights of output pixel i."""
    taps = [math.exp(-0.5 * (t / sigma) ** 2) for t in range(-radius, radius + 1)]
    kernel = tf.constant([t / sum(taps) for t in taps], tf.float32)
    source = tf.abs(tf.range(size)[:, None] + tf.range(-radius, radius + 1)[None, :])
    source = tf.where(source > size - 1, 2 * (size - 1) - source, source)
    return tf.reduce_sum(tf.one_hot(source, size) * kernel[None, :, None], axis=1)


def apply_confetti(images: tf.Tensor, params: dict[str, tf.Tensor],
                   scale_size: Optional[Sequence[int]] = None) -> tf.Tensor:
    """Adds the blurred blobs and clips; subtracts them where adding would barely show."""
    noise = tf.cast(confetti_noise(params, images.shape[1], images.shape[2], scale_size),
                    images.dtype)
    plus = tf.clip_by_value(images + noise, 0.0, 1.0)
    minus = tf.clip_by_value(images - noise, 0.0, 1.0)
    d_plus = tf.reduce_mean(tf.abs(plus - images), axis=[1, 2, 3])
    d_minus = tf.reduce_mean(tf.abs(minus - images), axis=[1, 2, 3])
    invert = (d_plus < CONFETTI_INVERT_BELOW) & (d_minus > d_plus)
    return tf.where(invert[:, None, None, None], minus, plus)


def confetti(images: tf.Tensor, seed: tf.Tensor,
             scale_size: Optional[Sequence[int]] = None) -> tf.Tensor:
    """Samples and applies Confetti noise in one call; uint8 is scaled to [0, 1]."""
    images = color.as_float_images(images)
    height, width = images.shape[1], images.shape[2]
    params = sample_confetti(seed, tf.shape(images)[0], height, width, scale_size)
    return apply_confetti(images, params, scale_size)


# =============================================================================================
# Views for make_views.

# View kind (see config.TASK_VIEWS) -> how it is made from the pre-augmented images.
VIEW_KINDS: tuple[str, ...] = ("rot90", "rot180", "rot270", "cutout", "cutout_mean",
                               "cutout_color", "scar_cutout", "confetti")


def make_view(kind: str, images: tf.Tensor, seed: tf.Tensor,
              config: AugmentConfig = AugmentConfig(),
              scale_size: Optional[Sequence[int]] = None) -> tf.Tensor:
    """One baseline view of every image (float32 [0, 1] batch with static H and W)."""
    if kind.startswith("rot"):
        return rotate(images, int(kind[3:]) // 90)
    if kind == "cutout":
        return cutout(images, seed, "grey", config)
    if kind in ("cutout_mean", "cutout_color"):
        return cutout(images, seed, kind[len("cutout_"):], config)
    if kind == "scar_cutout":
        return scar_cutout(images, seed, config, scale_size)
    if kind == "confetti":
        return confetti(images, seed, scale_size)
    raise ValueError(f"unknown baseline view {kind!r}; choose from {VIEW_KINDS}")


def _pixel_centres(height: int, width: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Pixel-centre coordinates shaped ``[1, H, 1]`` and ``[1, 1, W]``."""
    ys = tf.cast(tf.range(height), tf.float32)[None, :, None] + 0.5
    xs = tf.cast(tf.range(width), tf.float32)[None, None, :] + 0.5
    return ys, xs


def _cumsum(values: Sequence[float]) -> list[float]:
    out, total = [], 0.0
    for v in values:
        total += v
        out.append(total)
    return out
