"""Ground-truth masks as they come: decoding, the one binarisation rule, and reading at a size.

Every place that reads a mask file (the validator, the pixel metrics, the heatmap pictures)
calls :func:`read_mask` or the two steps it is made of, :func:`decode_mask` and
:func:`binarise`, so a mask means the same thing everywhere.

Decoding keeps the file's own numbers: 8-bit (0..255), 16-bit (0..65535), 1-bit (0/255 after
expansion), 32-bit or float TIFF. PNG and JPEG are decoded by TensorFlow (the images' decoder);
BMP (TensorFlow cannot decode 1-bit or colour-palette BMPs) and TIFF (TensorFlow cannot decode
it at all) by OpenCV. Channels are reduced to one: grey as is; palette expanded to its colours;
colour masks take the largest channel; an alpha channel is ignored, unless the colour channels
are the same everywhere and alpha varies (a defect drawn as opacity), then alpha is the mask.

The rule (:func:`binarise`, threshold ``t``, ``--mask_threshold``, default 0.5): a pixel is a
defect when its value is at least ``t`` times the mask's full scale: 255 for 8-bit files, 65535
for 16-bit ones, and for 32-bit or float TIFFs the smallest of 1, 255 and 65535 that holds its
largest value. A mask in which no pixel reaches that cut but some are non-zero is a label mask
(0/1, 0 and small class numbers such as VisA's, 8-bit values in a 16-bit file): its non-zero
pixels are the defect. Smoothed and JPEG-compressed 0/255 masks come out as their clean
originals up to a few edge pixels.

A mask entry may be one path or several (MVTec LOCO AD: several masks per image); several are
binarised one by one and merged by logical OR.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Optional, Sequence, Union

import cv2
import numpy as np
import tensorflow as tf

from cutpaste_tf.data.index import DataError

DEFAULT_THRESHOLD = 0.5
MaskEntry = Union[None, str, Sequence[str]]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*")
_CHANNELS = {1: "grey", 2: "grey+alpha", 3: "RGB", 4: "RGBA"}


@dataclasses.dataclass(frozen=True)
class DecodedMask:
    """One mask file's values, reduced to one channel, and how they were read."""

    values: np.ndarray  # [H, W]: uint8, uint16, or (32-bit / float TIFF) int32 / float32
    full_scale: float  # 255, 65535, or for 32-bit / float files 1, 255 or 65535
    color: str  # "grey", "RGB", "RGBA", "grey+alpha" or "palette": what the file held
    from_alpha: bool = False  # the colour was the same everywhere: alpha was read instead


def mask_paths(entry: MaskEntry) -> tuple[str, ...]:
    """The files of one ``CategoryData.mask_files`` entry: () for None, a path or a tuple."""
    if entry is None:
        return ()
    if isinstance(entry, (str, bytes)):
        return (entry.decode() if isinstance(entry, bytes) else entry,)
    return tuple(entry)


def check_threshold(threshold: float) -> None:
    """ValueError unless ``threshold`` is a fraction in (0, 1]."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"mask_threshold must be in (0, 1] (a fraction of the mask's full "
                         f"scale), got {threshold}")


def cut(full_scale: float, threshold: float, dtype=np.uint8) -> float:
    """The smallest value that is a defect: ``threshold * full_scale``, rounded up for integer
    masks (128 of 255 at 0.5)."""
    value = threshold * full_scale
    return float(math.ceil(value - 1e-9)) if np.issubdtype(dtype, np.integer) else value


def binarise(values: np.ndarray, full_scale: float,
             threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """The defect pixels of a one-channel mask, by the module's rule: ``values >= threshold *
    full_scale``, or, when no pixel reaches that, ``values != 0`` (a label mask such as 0/1)."""
    return _binarise(values, full_scale, threshold)[0]


def _binarise(values: np.ndarray, full_scale: float, threshold: float
              ) -> tuple[np.ndarray, bool]:
    """(defect pixels, whether the mask was read as labels)."""
    check_threshold(threshold)
    defect = values >= cut(full_scale, threshold, values.dtype)
    if defect.any() or not values.any():
        return defect, False
    return values != 0, True


def full_scale(values: np.ndarray) -> float:
    """255 for 8-bit masks, 65535 for 16-bit ones; for wider or float ones the smallest of
    1, 255 and 65535 that holds the largest value (else that value)."""
    if values.dtype == np.uint8:
        return 255.0
    if values.dtype == np.uint16:
        return 65535.0
    top = float(values.max()) if values.size else 0.0
    return next((s for s in (1.0, 255.0, 65535.0) if top <= s), top)


def decode_mask(contents: bytes, path: str = "mask") -> DecodedMask:
    """A mask file's bytes -> :class:`DecodedMask`; DataError naming ``path`` if it is not a
    decodable PNG, JPEG, BMP or TIFF."""
    if contents.startswith(_PNG_SIGNATURE):
        fmt = "PNG"
        color = {0: "grey", 2: "RGB", 3: "palette", 4: "grey+alpha", 6: "RGBA"}.get(
            contents[25] if len(contents) > 25 else -1)
        dtype = tf.uint16 if len(contents) > 24 and contents[24] == 16 else tf.uint8
        pixels = _tf_decode(lambda: tf.io.decode_png(contents, channels=0, dtype=dtype), path, fmt)
    elif contents.startswith(b"\xff\xd8"):
        fmt, color = "JPEG", None
        pixels = _tf_decode(lambda: tf.io.decode_jpeg(contents, channels=0), path, fmt)
    elif contents.startswith((b"BM", *_TIFF_SIGNATURES)):
        fmt, color = ("BMP" if contents.startswith(b"BM") else "TIFF"), None
        pixels = cv2.imdecode(np.frombuffer(contents, np.uint8), cv2.IMREAD_UNCHANGED)
        if pixels is None:
            raise DataError(f"{path}: truncated or corrupt {fmt} mask (OpenCV cannot decode it)")
        if pixels.ndim == 3 and pixels.shape[2] >= 3:  # BGR(A) -> RGB(A)
            pixels = pixels[..., [2, 1, 0, *range(3, pixels.shape[2])]]
    elif not contents:
        raise DataError(f"{path}: empty file, not a mask")
    else:
        raise DataError(f"{path}: not a PNG, JPEG, BMP or TIFF mask (it starts with "
                        f"{contents[:8]!r})")
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    values, from_alpha = _one_channel(pixels)
    color = "palette" if color == "palette" else _CHANNELS.get(pixels.shape[2], "RGB")
    return DecodedMask(values, full_scale(values), color, from_alpha)


def _tf_decode(fn, path: str, fmt: str) -> np.ndarray:
    try:
        return fn().numpy()
    except tf.errors.OpError as e:
        raise DataError(f"{path}: truncated or corrupt {fmt} mask ({op_error_reason(e)})"
                        ) from None


def _one_channel(pixels: np.ndarray) -> tuple[np.ndarray, bool]:
    """[H, W, C] -> ([H, W], read from alpha): grey as is, colour by its largest channel,
    alpha only when the colour is the same everywhere and alpha is not."""
    channels = pixels.shape[2]
    colour = pixels[..., :channels - 1] if channels in (2, 4) else pixels
    if channels in (2, 4):
        alpha = pixels[..., -1]
        if (colour == colour[:1, :1]).all() and alpha.min() != alpha.max():
            return alpha, True
    return (colour[..., 0] if colour.shape[2] == 1 else colour.max(axis=-1)), False


def read_file(path: str) -> DecodedMask:
    """Reads and decodes one mask file (local or any ``tf.io.gfile`` path)."""
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            contents = f.read()
    except (tf.errors.OpError, OSError) as e:
        raise DataError(f"{path}: cannot be read: {e}") from None
    return decode_mask(contents, path)


def resize_nearest(mask: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """A bool mask at ``size`` (height, width), nearest neighbour (TensorFlow's, as the pixel
    metrics have always resized masks)."""
    size = tuple(int(s) for s in size)
    if mask.shape == size:
        return mask
    resized = tf.image.resize(mask[..., None].astype(np.uint8), size, method="nearest")
    return resized.numpy()[..., 0].astype(bool)


def read_mask(paths: MaskEntry, size: Optional[Sequence[int]] = None,
              threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """The bool ``[H, W]`` defect mask of one image from one or several mask files.

    Each file is binarised by :func:`binarise` and resized to ``size`` (height, width) with
    nearest neighbour; several files are merged by logical OR (without ``size``, at the first
    file's size). Raises DataError naming a file that cannot be read or decoded.
    """
    files = mask_paths(paths)
    if not files:
        raise ValueError("read_mask needs at least one mask file")
    merged = None
    for path in files:
        decoded = read_file(path)
        mask = binarise(decoded.values, decoded.full_scale, threshold)
        target = size if size is not None else (merged.shape if merged is not None else mask.shape)
        mask = resize_nearest(mask, target)
        merged = mask if merged is None else merged | mask
    return merged


def conversions(decoded: DecodedMask, threshold: float = DEFAULT_THRESHOLD) -> list[str]:
    """What reading one mask did to it, each as the counted phrase of a report line (after
    "N "), or [] for a clean 0/max grey mask."""
    notes = []
    if decoded.from_alpha:
        notes.append(f"{decoded.color} masks read from their alpha channel (the colour is the "
                     "same everywhere)")
    elif decoded.color == "palette":
        notes.append("palette masks expanded to their colours and converted to grey "
                     "(largest channel)")
    elif decoded.color == "grey+alpha":
        notes.append("grey+alpha masks read from their grey channel (alpha ignored)")
    elif decoded.color in ("RGB", "RGBA"):
        alpha = "; alpha ignored" if decoded.color == "RGBA" else ""
        notes.append(f"{decoded.color} masks converted to grey (largest colour channel{alpha})")
    values, scale = decoded.values, decoded.full_scale
    _, labels = _binarise(values, scale, threshold)
    at = cut(scale, threshold, values.dtype)
    if labels and values.max() == 1:
        notes.append("masks read as 0/1 (1 = defect)")
    elif labels:
        notes.append(f"masks with no value at or above {at:g} (--mask_threshold={threshold:g} "
                     f"of {scale:g}) read as labels: non-zero = defect")
    elif ((values != 0) & (values != scale)).any():
        notes.append(f"masks binarised at {at:g} of {scale:g}: values between 0 and {scale:g} "
                     "(smoothed or compressed edges)")
    return notes


def op_error_reason(error: tf.errors.OpError) -> str:
    """The decoder's own words, without TensorFlow's function-node prefix and op suffix."""
    text = (error.message or "").strip().splitlines()
    text = text[0] if text else type(error).__name__
    text = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", text)
    return re.sub(r"\s*\[Op:[^\]]*\].*$", "", text).strip() or type(error).__name__
