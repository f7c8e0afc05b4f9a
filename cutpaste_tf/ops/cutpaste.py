"""CutPaste and CutPaste-Scar (Appendix A.2), split into "sample parameters" and "apply them".

Both ops work on float32 batches ``[B, H, W, 3]`` in [0, 1], any H and W (``cutpaste`` and
``scar`` also take uint8 batches, which they scale to float32 first). The apply step is a
pure function of the image and the parameters: coordinates, a gather, a mask and a scatter,
so it runs eagerly, in ``tf.data`` and under ``tf.function(jit_compile=True)``.

Only the patch is computed: :func:`cutpaste_patch` and :func:`scar_patch` return the pasted
pixels as flat destination indices and values, patch-sized (a static bound on the patch), and
:func:`paste` writes them into the images with one scatter. The colour jitter, its HSV round
trip and the masks therefore cost in proportion to the patch, not to the image (CutPaste's
patch is at most 15% of the image, a scar far less).

CutPaste: the patch area is ``U(0.02, 0.15)`` of the image area, its aspect ratio (height /
width) log-uniform on (0.3, 3.3) as in RandomErasing, which the paper's implementation follows.
The patch is cut from the same image; source and destination boxes both lie wholly inside it.

CutPaste-Scar: a ``width x length`` rectangle with width ``U[2, 16]`` and length ``U[10, 25]``
pixels, rotated by ``U(-45, 45)`` degrees, filled with a patch of the same image. The sizes are
pixels at every image size, as the paper states them ("in terms of number of pixels"): a
convolution sees a 4-pixel scar the same way in a 128x128 image as in a 256x256 one. With
``scar_reference_size`` N > 0 they are pixels at NxN instead and scale with ``sqrt(H * W) / N``,
keeping the scar's share of the image area (at 128x128 and N = 256, 1-8 px wide); a width that
would scale under one pixel is raised to one pixel, so every scar covers some pixels. Sizes
never exceed the image. Width runs along x and length along y before the rotation, so scars
are within 45 degrees of vertical. The unrotated source box and the rotated destination box
both lie wholly inside the image.

Before pasting, the patch gets colour jitter of at most ``patch_jitter`` in random order
(torchvision semantics, see :mod:`cutpaste_tf.ops.color`), its contrast mean taken over the patch.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import tensorflow as tf

from cutpaste_tf.config import AugmentConfig
from cutpaste_tf.ops import color, sampling

_CANDIDATES = 10  # RandomErasing also makes 10 attempts to find a box that fits.


def sample_cutpaste(seed: tf.Tensor, batch_size, height: int, width: int,
                    config: AugmentConfig = AugmentConfig()) -> dict[str, tf.Tensor]:
    """Draws CutPaste boxes for a batch.

    Returns int32 ``[B]`` tensors ``patch_h``, ``patch_w``, ``src_y``, ``src_x``, ``dst_y``,
    ``dst_x`` (top-left corners), float ``area_ratio`` and ``aspect_ratio`` as drawn before
    rounding, and the patch jitter parameters under ``jitter``.
    """
    seeds = sampling.split(seed, 4)
    lo, hi = config.area_ratio
    area = sampling.uniform([batch_size, _CANDIDATES], seeds[0], lo, hi)
    log_lo, log_hi = math.log(config.aspect_ratio[0]), math.log(config.aspect_ratio[1])
    aspect = tf.exp(sampling.uniform([batch_size, _CANDIDATES], seeds[1], log_lo, log_hi))
    pixels = area * float(height * width)
    h = tf.maximum(tf.round(tf.sqrt(pixels * aspect)), 1.0)
    w = tf.maximum(tf.round(tf.sqrt(pixels / aspect)), 1.0)
    # The first candidate that fits; only extreme image aspect ratios ever need clipping.
    fits = tf.logical_and(h <= height, w <= width)
    pick = tf.argmax(tf.cast(fits, tf.int32), axis=1, output_type=tf.int32)

    def first(t):
        return tf.gather(t, pick, axis=1, batch_dims=1)

    patch_h = tf.cast(tf.minimum(first(h), float(height)), tf.int32)
    patch_w = tf.cast(tf.minimum(first(w), float(width)), tf.int32)
    corners = sampling.uniform([4, batch_size], seeds[2])
    room_y, room_x = height - patch_h + 1, width - patch_w + 1
    return {
        "patch_h": patch_h,
        "patch_w": patch_w,
        "src_y": _scale_floor(corners[0], room_y),
        "src_x": _scale_floor(corners[1], room_x),
        "dst_y": _scale_floor(corners[2], room_y),
        "dst_x": _scale_floor(corners[3], room_x),
        "area_ratio": first(area),
        "aspect_ratio": first(aspect),
        "jitter": color.sample_jitter(seeds[3], batch_size, config.patch_jitter),
    }


def apply_cutpaste(images: tf.Tensor, params: dict[str, tf.Tensor],
                   config: AugmentConfig = AugmentConfig()) -> tf.Tensor:
    """Pastes each image's jittered source box at its destination box."""
    return paste(images, *cutpaste_patch(images, params, config))


def cutpaste_patch(images: tf.Tensor, params: dict[str, tf.Tensor],
                   config: AugmentConfig = AugmentConfig()) -> tuple[tf.Tensor, tf.Tensor]:
    """The pixels CutPaste writes, for :func:`paste`: int32 ``[B, N]`` flat destination indices
    (``y * W + x``) and their jittered values ``[B, N, C]``, ``N`` =
    :func:`cutpaste_patch_size`.

    Slot ``k`` is the patch's pixel ``k`` in row-major order; the slots past a patch's
    ``patch_h * patch_w`` pixels repeat its last pixel (same source, same value, same
    destination). Hand-built patches larger than ``N`` pixels would lose their tail; the
    sampler never draws them.
    """
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    size = cutpaste_patch_size(height, width, config)
    patch_w = params["patch_w"][:, None]
    area = params["patch_h"][:, None] * patch_w
    slot = tf.range(size)[None, :]
    k = tf.minimum(slot, area - 1)
    row, col = k // patch_w, k % patch_w
    src = (params["src_y"][:, None] + row) * width + params["src_x"][:, None] + col
    dst = (params["dst_y"][:, None] + row) * width + params["dst_x"][:, None] + col
    flat = tf.reshape(images, [-1, height * width, channels])
    values = tf.gather(flat, src, axis=1, batch_dims=1)
    if config.patch_jitter > 0:
        # As a [B, N, 1, C] image; the contrast mean is over the patch's own pixels only.
        values = color.apply_jitter(values[:, :, None], params["jitter"],
                                    (slot < area)[:, :, None])[:, :, 0]
    return dst, values


def cutpaste_canvas_size(height: int, width: int,
                         config: AugmentConfig = AugmentConfig()) -> tuple[int, int]:
    """Static bounds on a CutPaste patch's height and width at this image size."""
    pixels = config.area_ratio[1] * height * width
    max_h = math.ceil(math.sqrt(pixels * config.aspect_ratio[1])) + 1
    max_w = math.ceil(math.sqrt(pixels / config.aspect_ratio[0])) + 1
    return min(height, max_h), min(width, max_w)


def cutpaste_patch_size(height: int, width: int,
                        config: AugmentConfig = AugmentConfig()) -> int:
    """Static bound on a CutPaste patch's pixel count ``patch_h * patch_w`` at this size.

    With ``P`` the largest area in pixels and ``a`` the aspect ratio, each side is at most its
    unrounded value plus one (rounding, and the one-pixel minimum), so the patch has at most
    ``(sqrt(P a) + 1)(sqrt(P / a) + 1) = P + sqrt(P) (sqrt(a) + 1 / sqrt(a)) + 1`` pixels; the
    middle term is largest at an end of the aspect range. About 15% of the image at the
    paper's settings, against 51% for the box of :func:`cutpaste_canvas_size`.
    """
    pixels = config.area_ratio[1] * height * width * (1 + 1e-6)  # float32 slack
    spread = max(math.sqrt(a) + 1 / math.sqrt(a) for a in config.aspect_ratio)
    bound = math.floor(pixels + math.sqrt(pixels) * spread * (1 + 1e-6) + 1.0) + 1
    canvas_h, canvas_w = cutpaste_canvas_size(height, width, config)
    return max(1, min(bound, canvas_h * canvas_w))


def sample_scar(seed: tf.Tensor, batch_size, height: int, width: int,
                config: AugmentConfig = AugmentConfig(),
                scale_size: Optional[Sequence[int]] = None) -> dict[str, tf.Tensor]:
    """Draws CutPaste-Scar rectangles for a batch.

    ``scale_size`` (height, width) is the image size the scar sizes scale with; by default the
    size of the images themselves. Patch training passes the full image's size, so that a scar
    in a crop is as many pixels as in the whole image (see :func:`scar_scale`).

    Returns float32 ``[B]`` tensors ``scar_w`` and ``scar_l`` (pixels at this image size),
    ``angle`` (radians), centres ``src_cy``, ``src_cx``, ``dst_cy``, ``dst_cx`` (pixel units,
    the image spanning [0, H] x [0, W]), and the patch jitter parameters under ``jitter``.
    """
    seeds = sampling.split(seed, 3)
    scale = scar_scale(*(scale_size or (height, width)), config)
    u = sampling.uniform([3, batch_size], seeds[0])
    # At least one pixel (below that a scar can cover no pixel centre at all, yet would still
    # be labelled a scar), and never wider or longer than the image can hold, even unrotated.
    scar_w = tf.clip_by_value(_lerp(u[0], config.scar_width) * scale, 1.0, float(width))
    scar_l = tf.clip_by_value(_lerp(u[1], config.scar_length) * scale, 1.0, float(height))
    angle = _lerp(u[2], (-config.scar_angle, config.scar_angle)) * (math.pi / 180.0)
    cos, sin = tf.abs(tf.cos(angle)), tf.abs(tf.sin(angle))
    # Half extents of the rotated rectangle's bounding box.
    half_x = tf.minimum(0.5 * (cos * scar_w + sin * scar_l), 0.5 * width)
    half_y = tf.minimum(0.5 * (sin * scar_w + cos * scar_l), 0.5 * height)
    c = sampling.uniform([4, batch_size], seeds[1])
    return {
        "scar_w": scar_w,
        "scar_l": scar_l,
        "angle": angle,
        "src_cy": _lerp(c[0], (0.5 * scar_l, height - 0.5 * scar_l)),
        "src_cx": _lerp(c[1], (0.5 * scar_w, width - 0.5 * scar_w)),
        "dst_cy": _lerp(c[2], (half_y, height - half_y)),
        "dst_cx": _lerp(c[3], (half_x, width - half_x)),
        "jitter": color.sample_jitter(seeds[2], batch_size, config.patch_jitter),
    }


def apply_scar(images: tf.Tensor, params: dict[str, tf.Tensor],
               config: AugmentConfig = AugmentConfig(),
               scale_size: Optional[Sequence[int]] = None) -> tf.Tensor:
    """Pastes each image's rotated, jittered scar; nearest-neighbour sampling, like PIL.

    ``scale_size`` must be the one the parameters were sampled with.
    """
    return paste(images, *scar_patch(images, params, config, scale_size))


def scar_patch(images: tf.Tensor, params: dict[str, tf.Tensor],
               config: AugmentConfig = AugmentConfig(),
               scale_size: Optional[Sequence[int]] = None) -> tuple[tf.Tensor, tf.Tensor]:
    """The pixels CutPaste-Scar writes, for :func:`paste`: int32 ``[B, N]`` flat indices of a
    :func:`scar_canvas_size` window around each scar and their values ``[B, N, C]`` (the jittered
    scar inside it, the image's own pixels around the scar)."""
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    size_y, size_x = scar_canvas_size(height, width, config, scale_size)
    # A small canvas around the destination: canvas pixel (a, b) is image pixel (y0+a, x0+b).
    y0 = tf.clip_by_value(tf.cast(tf.floor(params["dst_cy"] - 0.5 * size_y), tf.int32),
                          0, height - size_y)
    x0 = tf.clip_by_value(tf.cast(tf.floor(params["dst_cx"] - 0.5 * size_x), tf.int32),
                          0, width - size_x)

    def col(t):
        return t[:, None, None]

    rows = col(y0) + tf.range(size_y)[None, :, None]
    cols = col(x0) + tf.range(size_x)[None, None, :]
    ys, xs = tf.cast(rows, tf.float32) + 0.5, tf.cast(cols, tf.float32) + 0.5
    u, v, in_scar = rotated_rect(ys, xs, params["dst_cy"], params["dst_cx"], params["scar_w"],
                                 params["scar_l"], params["angle"])
    src_y = tf.clip_by_value(tf.cast(tf.floor(col(params["src_cy"]) + v), tf.int32), 0, height - 1)
    src_x = tf.clip_by_value(tf.cast(tf.floor(col(params["src_cx"]) + u), tf.int32), 0, width - 1)
    flat = tf.reshape(images, [-1, height * width, channels])

    def pixels(index):
        index = tf.reshape(index, [-1, size_y * size_x])
        return index, tf.gather(flat, index, axis=1, batch_dims=1)

    _, canvas = pixels(src_y * width + src_x)
    in_scar = tf.reshape(in_scar, [-1, size_y * size_x, 1])
    if config.patch_jitter > 0:
        # As a [B, N, 1, C] image; the contrast mean is over the scar's pixels only.
        canvas = color.apply_jitter(canvas[:, :, None], params["jitter"], in_scar)[:, :, 0]
    window, original = pixels(rows * width + cols)
    return window, tf.where(in_scar, canvas, original)


def rotated_rect(ys: tf.Tensor, xs: tf.Tensor, cy: tf.Tensor, cx: tf.Tensor, width: tf.Tensor,
                 length: tf.Tensor, angle: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Pixel centres ``ys`` ``[B, h, 1]``, ``xs`` ``[B, 1, w]`` in the frame of a rectangle
    (``[B]`` centre, width along x, length along y, then rotated by ``angle``): returns the
    across / along coordinates ``u``, ``v`` and whether each pixel centre lies inside."""

    def col(t):
        return t[:, None, None]

    dy, dx = ys - col(cy), xs - col(cx)
    cos, sin = col(tf.cos(angle)), col(tf.sin(angle))
    # Coordinates in the rectangle's own frame (rotate the offset back by -angle).
    u = cos * dx + sin * dy
    v = -sin * dx + cos * dy
    inside = (tf.abs(u) < 0.5 * col(width)) & (tf.abs(v) < 0.5 * col(length))
    return u, v, inside


def scar_scale(height: int, width: int, config: AugmentConfig = AugmentConfig()) -> float:
    """How much to scale the scar sizes for an image of this size: 1 (pixels at every size)
    unless ``config.scar_reference_size`` is set, then ``sqrt(H * W) / scar_reference_size``.

    For patch training the size is the full image's, not the crop's: a 64x64 crop of a 256x256
    image gets the same scars as the whole image would, as the patch model of Sec. 2.4 does.
    """
    if not config.scar_reference_size:
        return 1.0
    return math.sqrt(height * width) / float(config.scar_reference_size)


def scar_canvas_size(height: int, width: int, config: AugmentConfig = AugmentConfig(),
                     scale_size: Optional[Sequence[int]] = None) -> tuple[int, int]:
    """Static size of a window that holds any rotated scar at this image size."""
    scale = scar_scale(*(scale_size or (height, width)), config)
    diagonal = math.hypot(config.scar_width[1] * scale, config.scar_length[1] * scale)
    side = math.ceil(diagonal) + 2
    return min(height, side), min(width, side)


def cutpaste(images: tf.Tensor, seed: tf.Tensor,
             config: AugmentConfig = AugmentConfig()) -> tf.Tensor:
    """Samples and applies CutPaste in one call; needs static H and W. uint8 images are
    scaled to float32 [0, 1] first."""
    images = color.as_float_images(images)
    height, width = images.shape[1], images.shape[2]
    params = sample_cutpaste(seed, tf.shape(images)[0], height, width, config)
    return apply_cutpaste(images, params, config)


def scar(images: tf.Tensor, seed: tf.Tensor, config: AugmentConfig = AugmentConfig(),
         scale_size: Optional[Sequence[int]] = None) -> tf.Tensor:
    """Samples and applies CutPaste-Scar in one call; needs static H and W. uint8 images are
    scaled to float32 [0, 1] first."""
    images = color.as_float_images(images)
    height, width = images.shape[1], images.shape[2]
    params = sample_scar(seed, tf.shape(images)[0], height, width, config, scale_size)
    return apply_scar(images, params, config, scale_size)


def paste(images: tf.Tensor, index: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
    """Writes ``values`` ``[B, N, C]`` at the flat pixel indices ``index`` ``[B, N]``
    (``y * W + x``) of each image, with one scatter whose cost is that of the patch (plus one
    copy of the images). An index listed twice for one image must carry the same value twice.
    """
    return paste_views(images, [(index, values)])


def paste_views(images: tf.Tensor,
                patches: Sequence[Optional[tuple[tf.Tensor, tf.Tensor]]]) -> tf.Tensor:
    """``[V * B, H, W, C]``: the images once per entry of ``patches``, each copy with that
    entry's patch (index, values) of :func:`paste` written in (``None``: the images as they
    are). One copy of the images per view and one scatter for all the patches: pasting views
    one by one and concatenating them copies every image twice."""
    shape = tf.shape(images)
    channels = images.shape[-1]
    views = len(patches)
    index, values = [], []
    for k, patch in enumerate(patches):
        if patch is None:
            continue
        offsets = (k * shape[0] + tf.range(shape[0]))[:, None] * (shape[1] * shape[2])
        index.append(tf.reshape(patch[0] + offsets, [-1, 1]))
        values.append(tf.reshape(patch[1], [-1, channels]))
    copies = tf.concat([images] * views, axis=0) if views > 1 else images
    if index:
        copies = tf.tensor_scatter_nd_update(tf.reshape(copies, [-1, channels]),
                                             tf.concat(index, 0), tf.concat(values, 0))
    return tf.reshape(copies, tf.concat([[views * shape[0]], shape[1:]], 0))


def choose_patch(pick: tf.Tensor, first: tuple[tf.Tensor, tf.Tensor],
                 second: tuple[tf.Tensor, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
    """Per example, ``first`` (where the bool ``[B]`` ``pick`` holds) or ``second`` of two
    patches (index, values) of :func:`cutpaste_patch` / :func:`scar_patch`; the shorter one is
    padded by repeating its last slot, which rewrites the same pixel with the same value."""
    size = max(first[0].shape[1], second[0].shape[1])

    def padded(index, values):
        slot = tf.minimum(tf.range(size), index.shape[1] - 1)
        return tf.gather(index, slot, axis=1), tf.gather(values, slot, axis=1)

    (i1, v1), (i2, v2) = padded(*first), padded(*second)
    return tf.where(pick[:, None], i1, i2), tf.where(pick[:, None, None], v1, v2)


def _scale_floor(u: tf.Tensor, n: tf.Tensor) -> tf.Tensor:
    """Maps U[0, 1) to a uniform integer in [0, n)."""
    return tf.minimum(tf.cast(tf.floor(u * tf.cast(n, tf.float32)), tf.int32), n - 1)


def _lerp(u: tf.Tensor, bounds) -> tf.Tensor:
    """Maps U[0, 1) onto [bounds[0], bounds[1])."""
    return bounds[0] + u * (bounds[1] - bounds[0])
