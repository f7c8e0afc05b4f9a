"""Nuisance shifts of a capture: what a drifting inspection line does to its images.

A lamp ages (brightness, contrast, gamma, a colour cast), a camera is re-mounted (translation,
a small rotation), a lens loses focus (blur), a sensor warms up (noise), a new encoder
compresses (JPEG). Each shift here is one deterministic operation with one amount, applied to
whole batches of float images ``[B, H, W, 3]`` in [0, 1] (the model's input, after decoding and
resizing): ``apply_shift(images, Shift("brightness", -0.1))`` is every image 10 % darker.
The stress test (:mod:`cutpaste_tf.analysis.robustness`) scores normal images under each shift
of :data:`STRESS_SHIFTS`; the simulated-drift protocol darkens only the test normals
(:data:`SIMULATED_DRIFT`).

Conventions of the amounts: brightness, contrast and colour cast are relative changes (-0.1 is
10 % less); gamma is the exponent (``x ** g``; above 1 darkens the mid-tones); translation is a
fraction of the image's height and width (edge pixels repeated, as the training's random
translation); rotation is in degrees (bilinear, edges repeated); blur is the Gaussian's sigma
in pixels of the model's input; noise is the standard deviation of additive Gaussian noise on
the [0, 1] scale (seeded, so a shift is the same every time); JPEG is the encoder's quality.
Photometric shifts follow torchvision's semantics where it has one (brightness multiplies,
contrast blends with the image's mean grey), so they are the same operations as the
pre-augmentation's colour jitter (:mod:`cutpaste_tf.ops.color`) at a fixed factor.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import tensorflow as tf

from cutpaste_tf.ops import color, tasks

KINDS = ("brightness", "contrast", "gamma", "color_cast", "translate", "rotate", "blur",
         "noise", "jpeg")
GEOMETRIC = ("translate", "rotate")  # shifts that move the part rather than its light


@dataclasses.dataclass(frozen=True)
class Shift:
    """One nuisance shift: a kind from :data:`KINDS` and its amount (see the module's
    docstring for each kind's unit)."""

    kind: str
    amount: float

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown shift {self.kind!r}; choose from {', '.join(KINDS)}")
        if self.kind == "gamma" and self.amount <= 0:
            raise ValueError(f"gamma must be positive, got {self.amount}")
        if self.kind in ("blur", "noise") and self.amount < 0:
            raise ValueError(f"{self.kind} must be at least 0, got {self.amount}")
        if self.kind == "jpeg" and not 1 <= self.amount <= 100:
            raise ValueError(f"JPEG quality must be in [1, 100], got {self.amount}")
        if self.kind in ("brightness", "contrast", "color_cast") and self.amount <= -1:
            raise ValueError(f"{self.kind} change must be above -100 %, got {self.amount}")

    @property
    def name(self) -> str:
        """A short label for tables: ``brightness -10%``, ``gamma 1.25``, ``blur σ=1 px``."""
        a = self.amount
        if self.kind in ("brightness", "contrast", "color_cast"):
            return f"{self.kind.replace('_', ' ')} {100 * a:+.0f}%"
        if self.kind == "translate":
            return f"translate 1/{round(1 / a)}" if a > 0 else "translate 0"
        if self.kind == "rotate":
            return f"rotate {a:+g}°"
        if self.kind == "blur":
            return f"blur σ={a:g} px"
        if self.kind == "noise":
            return f"noise σ={a:g}"
        if self.kind == "jpeg":
            return f"JPEG q{a:g}"
        return f"gamma {a:g}"

    @property
    def geometric(self) -> bool:
        return self.kind in GEOMETRIC

    @property
    def photometric_10(self) -> bool:
        """A brightness or contrast change of at most 10 %: what a line drifts by between two
        lamp services, and what the package's target bounds the false alarms of."""
        return self.kind in ("brightness", "contrast") and abs(self.amount) <= 0.1 + 1e-9


# The columns of image_statistics, in order; the serving signatures return them as
# ``image_stats`` [B, 4], so a TF Serving client can watch a line drift.
STATISTICS = ("mean_grey", "contrast", "red_cast", "blue_cast")


# The simulated drift of the evaluation: the test normals 8 % darker, the defects as captured
# (the size of the drift seen on a real line: mean grey 170 against 184).
SIMULATED_DRIFT = Shift("brightness", -0.08)
# The stress test's shifts, by default: each nuisance of a drifting line at amounts from "a
# week" to "a new lamp". Rotations are left out with ``geometric=False`` for categories where a
# turned part is itself a defect (MVTec AD's transistor: "misplaced").
STRESS_SHIFTS: tuple[Shift, ...] = (
    *(Shift("brightness", a) for a in (-0.2, -0.1, SIMULATED_DRIFT.amount, -0.05, 0.05, 0.1,
                                       0.2)),
    *(Shift("contrast", a) for a in (-0.2, -0.1, 0.1, 0.2)),
    Shift("gamma", 0.8), Shift("gamma", 1.25),
    Shift("color_cast", -0.05), Shift("color_cast", 0.05),
    Shift("translate", 1 / 32), Shift("translate", 1 / 16),
    Shift("rotate", 2.0), Shift("rotate", 5.0),
    Shift("blur", 1.0),
    Shift("noise", 0.02),
    Shift("jpeg", 75),
)


def parse_shifts(text: str) -> tuple[Shift, ...]:
    """``"brightness:-0.1,blur:1"`` -> shifts; ``"default"`` -> :data:`STRESS_SHIFTS`;
    ``"photometric"`` -> those that do not move the part. ValueError names a bad entry."""
    text = text.strip()
    if text in ("default", ""):
        return STRESS_SHIFTS
    if text == "photometric":
        return tuple(s for s in STRESS_SHIFTS if not s.geometric)
    out = []
    for item in text.split(","):
        kind, _, amount = item.strip().partition(":")
        try:
            out.append(Shift(kind.strip(), float(amount)))
        except ValueError as e:
            raise ValueError(f"shift {item.strip()!r}: {e} (write kind:amount, e.g. "
                             "brightness:-0.1, or 'default' or 'photometric')") from None
    return tuple(out)


def apply_shift(images: tf.Tensor, shift: Shift, seed: Sequence[int] = (0, 0)) -> tf.Tensor:
    """``images`` (float [B, H, W, 3] in [0, 1], or uint8) under ``shift``, clipped to [0, 1].
    ``seed`` draws the noise (the only random shift)."""
    x = tf.cast(color.as_float_images(images), tf.float32)
    a = float(shift.amount)
    if shift.kind == "brightness":
        out = x * (1.0 + a)
    elif shift.kind == "contrast":
        mean = tf.reduce_mean(color.rgb_to_grayscale(x), axis=[1, 2, 3], keepdims=True)
        out = mean + (x - mean) * (1.0 + a)
    elif shift.kind == "gamma":
        out = tf.pow(tf.maximum(x, 0.0), a)
    elif shift.kind == "color_cast":
        out = x * tf.constant([1.0 + a, 1.0, 1.0 - a], tf.float32)
    elif shift.kind == "translate":
        return translate(x, a)
    elif shift.kind == "rotate":
        return rotate(x, a)
    elif shift.kind == "blur":
        return gaussian_blur(x, a)
    elif shift.kind == "noise":
        noise = tf.random.stateless_normal(tf.shape(x), tf.constant(list(seed), tf.int64))
        out = x + a * noise
    else:
        return jpeg(x, int(a))
    return tf.clip_by_value(out, 0.0, 1.0)


def translate(images: tf.Tensor, fraction: float) -> tf.Tensor:
    """Every image moved down and right by ``fraction`` of its size (edge pixels repeated)."""
    batch, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    dy, dx = round(fraction * height), round(fraction * width)
    return tasks.apply_translation(images, {"dy": tf.fill([batch], dy),
                                            "dx": tf.fill([batch], dx)})


def rotate(images: tf.Tensor, degrees: float) -> tf.Tensor:
    """Every image turned by ``degrees`` counter-clockwise (as displayed, rows downwards) about
    its centre: bilinear sampling by gathers, source coordinates clipped (edge pixels
    repeated)."""
    height, width = images.shape[1], images.shape[2]
    theta = -math.radians(degrees)
    ys, xs = tf.meshgrid(tf.range(height, dtype=tf.float32), tf.range(width, dtype=tf.float32),
                         indexing="ij")
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    # The source of output pixel (y, x): rotate it back by -theta about the centre.
    src_y = cy + (ys - cy) * math.cos(theta) - (xs - cx) * math.sin(theta)
    src_x = cx + (ys - cy) * math.sin(theta) + (xs - cx) * math.cos(theta)
    src_y = tf.clip_by_value(src_y, 0.0, height - 1.0)
    src_x = tf.clip_by_value(src_x, 0.0, width - 1.0)
    y0, x0 = tf.floor(src_y), tf.floor(src_x)
    wy, wx = (src_y - y0)[..., None], (src_x - x0)[..., None]
    y0, x0 = tf.cast(y0, tf.int32), tf.cast(x0, tf.int32)
    y1, x1 = tf.minimum(y0 + 1, height - 1), tf.minimum(x0 + 1, width - 1)
    flat = tf.reshape(images, [-1, height * width, 3])

    def at(y, x):  # [H, W] source pixels -> [B, H, W, 3]
        return tf.gather(flat, y * width + x, axis=1)

    top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
    bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
    return tf.clip_by_value(top * (1 - wy) + bottom * wy, 0.0, 1.0)


def gaussian_blur(images: tf.Tensor, sigma: float) -> tf.Tensor:
    """A separable Gaussian blur of ``sigma`` pixels (kernel radius 3 sigma, edges reflected)."""
    if sigma <= 0:
        return images
    radius = max(1, math.ceil(3 * sigma))
    taps = tf.exp(-tf.square(tf.range(-radius, radius + 1, dtype=tf.float32)) / (2 * sigma ** 2))
    taps /= tf.reduce_sum(taps)
    x = images
    for kernel in (tf.reshape(taps, [-1, 1, 1, 1]), tf.reshape(taps, [1, -1, 1, 1])):
        pad = [[0, 0], [radius, radius], [0, 0], [0, 0]] if kernel.shape[0] > 1 else \
            [[0, 0], [0, 0], [radius, radius], [0, 0]]
        x = tf.pad(x, pad, mode="REFLECT")
        x = tf.nn.depthwise_conv2d(x, tf.tile(kernel, [1, 1, 3, 1]), [1, 1, 1, 1], "VALID")
    return tf.clip_by_value(x, 0.0, 1.0)


def jpeg(images: tf.Tensor, quality: int) -> tf.Tensor:
    """Every image encoded as a JPEG at ``quality`` and decoded again (8-bit round trip)."""
    def one(image):
        encoded = tf.io.encode_jpeg(tf.cast(tf.round(image * 255.0), tf.uint8), quality=quality)
        return tf.cast(tf.io.decode_jpeg(encoded, channels=3), tf.float32) / 255.0

    return tf.map_fn(one, tf.clip_by_value(images, 0.0, 1.0),
                     fn_output_signature=tf.TensorSpec(images.shape[1:], tf.float32))


def image_statistics(images: tf.Tensor) -> tf.Tensor:
    """Float images [B, H, W, 3] in [0, 1] -> [B, 4]: per image the mean grey (luma), the
    contrast (standard deviation of the luma), and the red and blue casts (mean red, mean blue
    minus the mean grey), in the order of :data:`STATISTICS`."""
    x = tf.cast(images, tf.float32)
    grey = color.rgb_to_grayscale(x)[..., 0]
    mean = tf.reduce_mean(grey, axis=[1, 2])
    contrast = tf.math.reduce_std(grey, axis=[1, 2])
    channels = tf.reduce_mean(x, axis=[1, 2])
    return tf.stack([mean, contrast, channels[:, 0] - mean, channels[:, 2] - mean], axis=1)
