"""Checking a category's files before anything is built: every image, every mask, once, on the CPU.

Training runs for hours on rented accelerators, so whatever can be found wrong with the data is
found first. :func:`validate_category` reads every image's header (size, bit depth, colour type)
without decoding its pixels, refuses images over a pixel limit (decompression bombs) or under a
minimum size, then decodes each image once with the same decoder the pipeline uses. Masks must
exist for every defective image once any of a category's masks exist, have their image's size,
and hold only 0 and 255. Problems are collected over all files and raised together as one
:class:`~cutpaste_tf.data.index.DataError` that names each file and what is wrong with it.

What is accepted, converted the way :func:`cutpaste_tf.data.pipeline.decode` converts it:
8- and 16-bit PNGs (16-bit values scaled by 255/65535, not clipped), palette PNGs (expanded),
grey and grey+alpha (grey copied to RGB), RGBA (alpha dropped), JPEG and BMP.

What is skipped with a counted warning: files in the image folders whose names do not end in an
image extension (``.png``, ``.jpg``, ``.jpeg``, ``.bmp``), such as ``.DS_Store`` or notes;
the indexer never lists them. A file *with* an image extension that is not a decodable image is
an error, not a skip: it is a damaged dataset, and skipping it would silently change the data.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import os
import re
import struct
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from cutpaste_tf.data.index import CategoryData, DataError

DEFAULT_MAX_PIXELS = 50_000_000  # 50 MP: MVTec AD's largest images are 1024 x 1024 (1 MP).
DEFAULT_MIN_SIZE = 32  # the smallest --image_size the model accepts
MAX_LISTED = 20  # problems listed in one error message; the rest are counted

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOR = {0: "grey", 2: "RGB", 3: "palette", 4: "grey+alpha", 6: "RGBA"}
# JPEG start-of-frame markers (baseline, progressive, lossless, ...), not DHT / JPG / DAC.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclasses.dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says, read without decoding the pixels."""

    format: str  # "PNG", "JPEG" or "BMP"
    width: int
    height: int
    bit_depth: int  # bits per sample (PNG, JPEG) or per pixel (BMP)
    color: str  # "grey", "RGB", "palette", "grey+alpha", "RGBA", "YCbCr", "CMYK", ...

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def conversion(self) -> Optional[str]:
        """How decoding changes this image on its way to 8-bit RGB, or None if it does not."""
        if self.format == "PNG" and self.bit_depth == 16:
            return "16-bit"
        if self.color in ("palette", "grey", "grey+alpha", "RGBA"):
            return self.color
        return None


@dataclasses.dataclass
class ValidationReport:
    """What :func:`validate_category` found that is not an error."""

    category: str
    num_images: int = 0
    num_masks: int = 0
    ignored_files: tuple[str, ...] = ()
    upscaled: int = 0  # images smaller than the training size, which get upscaled
    conversions: dict = dataclasses.field(default_factory=dict)  # "16-bit" -> count, ...

    def warnings(self) -> list[str]:
        """One line per counted warning (empty if there is nothing to say)."""
        lines = []
        if self.ignored_files:
            shown = ", ".join(self.ignored_files[:3])
            more = f" and {len(self.ignored_files) - 3} more" if len(self.ignored_files) > 3 else ""
            lines.append(f"[{self.category}] skipped {len(self.ignored_files)} file(s) that are "
                         f"not images by their name: {shown}{more}")
        if self.upscaled:
            lines.append(f"[{self.category}] {self.upscaled} image(s) are smaller than the "
                         "training size and will be upscaled")
        return lines

    def summary(self) -> str:
        converted = ", ".join(f"{n} {kind}" for kind, n in sorted(self.conversions.items()))
        text = f"[{self.category}] checked {self.num_images} images and {self.num_masks} masks"
        return text + (f" (converted to 8-bit RGB: {converted})" if converted else "")


def read_header(path: str) -> ImageHeader:
    """Size, bit depth and colour type of a PNG, JPEG or BMP file, from its header only.

    Raises:
      DataError: naming ``path``, if it is not one of those formats or its header is cut short.
    """
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            head = f.read(32)
            if head.startswith(_PNG_SIGNATURE):
                return _png_header(head, path)
            if head.startswith(b"\xff\xd8"):
                f.seek(2)
                return _jpeg_header(f, path)
            if head.startswith(b"BM"):
                return _bmp_header(head, path)
    except (tf.errors.OpError, OSError) as e:
        raise DataError(f"{path}: cannot be read: {e}") from None
    if not head:
        raise DataError(f"{path}: empty file, not an image")
    raise DataError(f"{path}: not a PNG, JPEG or BMP image (it starts with {head[:8]!r})")


def _png_header(head: bytes, path: str) -> ImageHeader:
    if len(head) < 26 or head[12:16] != b"IHDR":
        raise DataError(f"{path}: truncated or corrupt PNG header")
    width, height, depth, color = struct.unpack(">IIBB", head[16:26])
    if color not in _PNG_COLOR or depth not in (1, 2, 4, 8, 16):
        raise DataError(f"{path}: corrupt PNG header (colour type {color}, bit depth {depth})")
    return ImageHeader("PNG", width, height, depth, _PNG_COLOR[color])


def _jpeg_header(f, path: str) -> ImageHeader:
    while True:
        byte = f.read(1)
        while byte == b"\xff":  # fill bytes before a marker
            byte = f.read(1)
        if not byte:
            raise DataError(f"{path}: truncated JPEG (no frame header)")
        marker = byte[0]
        if marker == 0xD9 or marker == 0xDA:  # end of image or start of scan before any frame
            raise DataError(f"{path}: corrupt JPEG (no frame header before the image data)")
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            continue
        raw = f.read(2)
        if len(raw) < 2:
            raise DataError(f"{path}: truncated JPEG header")
        length = struct.unpack(">H", raw)[0]
        if marker in _JPEG_SOF:
            body = f.read(6)
            if len(body) < 6:
                raise DataError(f"{path}: truncated JPEG frame header")
            depth, height, width, components = struct.unpack(">BHHB", body)
            color = {1: "grey", 3: "YCbCr", 4: "CMYK"}.get(components, f"{components}-channel")
            return ImageHeader("JPEG", width, height, depth, color)
        if length < 2:
            raise DataError(f"{path}: corrupt JPEG segment length {length}")
        f.seek(f.tell() + length - 2)


def _bmp_header(head: bytes, path: str) -> ImageHeader:
    if len(head) < 30:
        raise DataError(f"{path}: truncated BMP header")
    info_size = struct.unpack("<I", head[14:18])[0]
    if info_size == 12:  # OS/2 BITMAPCOREHEADER
        width, height, _, depth = struct.unpack("<HHHH", head[18:26])
    else:
        width, height, _, depth = struct.unpack("<iiHH", head[18:30])
    color = "palette" if depth <= 8 else ("RGBA" if depth == 32 else "RGB")
    return ImageHeader("BMP", abs(width), abs(height), depth, color)


def validate_category(data: CategoryData, min_size: int = DEFAULT_MIN_SIZE,
                      max_pixels: int = DEFAULT_MAX_PIXELS, decode: bool = True,
                      image_size: Optional[Sequence[int]] = None,
                      workers: Optional[int] = None) -> ValidationReport:
    """Checks every image and mask of ``data``; raises one DataError listing every problem.

    Args:
      data: the indexed category.
      min_size: smallest height or width, in pixels, an image may have.
      max_pixels: largest width * height an image may have; checked from the header, before
        any pixel is decoded (a guard against decompression bombs).
      decode: also decode every image and mask once (catches truncated and corrupt files);
        False checks headers only.
      image_size: the training (height, width); smaller images are counted in the report
        (they will be upscaled).
      workers: decoding threads (default: the CPU count, at most 16).

    Returns:
      A :class:`ValidationReport` with counted warnings and the conversions seen.
    """
    if min_size < 1 or max_pixels < 1:
        raise ValueError(f"min_size and max_pixels must be positive, got {min_size}, {max_pixels}")
    report = ValidationReport(data.name, ignored_files=data.ignored_files)
    problems: list[str] = []
    images = list(dict.fromkeys(data.train_files + data.test_files))
    masks = {image: mask for image, mask in zip(data.test_files, data.mask_files) if mask}

    headers: dict[str, ImageHeader] = {}
    for path in images + list(masks.values()):
        try:
            header = read_header(path)
        except DataError as e:
            problems.append(str(e))
            continue
        if header.pixels > max_pixels:
            problems.append(f"{path}: {header.width}x{header.height} is {header.pixels:,} pixels, "
                            f"over the limit of {max_pixels:,} (--max_image_pixels); not decoded")
            continue
        if header.width == 0 or header.height == 0:
            problems.append(f"{path}: header says {header.width}x{header.height}, an empty image")
            continue
        headers[path] = header

    for path in images:
        header = headers.get(path)
        if header is None:
            continue
        if min(header.width, header.height) < min_size:
            problems.append(f"{path}: {header.width}x{header.height} is smaller than the minimum "
                            f"of {min_size} px per side (--min_image_size)")
            del headers[path]
            continue
        if header.conversion:
            report.conversions[header.conversion] = report.conversions.get(header.conversion, 0) + 1
        if image_size is not None and (header.height < image_size[0]
                                       or header.width < image_size[1]):
            report.upscaled += 1

    problems += _check_masks(data, masks, headers)

    if decode:
        todo = [(p, False) for p in images if p in headers]
        todo += [(m, True) for m in masks.values() if m in headers]
        workers = workers or min(16, os.cpu_count() or 1)
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            for problem in pool.map(lambda job: _decode_problem(job[0], headers[job[0]], job[1]),
                                    todo):
                if problem:
                    problems.append(problem)

    report.num_images, report.num_masks = len(images), len(masks)
    if problems:
        raise DataError(format_problems(data.name, problems))
    return report


def _check_masks(data: CategoryData, masks: dict[str, str],
                 headers: dict[str, ImageHeader]) -> list[str]:
    """Missing masks (once a category has some) and masks of another size than their image."""
    problems = []
    defective = [p for p, label in zip(data.test_files, data.test_labels) if label]
    if masks:
        missing = [p for p in defective if p not in masks]
        for path in missing:
            problems.append(f"{path}: defective test image without a mask, while "
                            f"{len(defective) - len(missing)} of the category's "
                            f"{len(defective)} defective images have one "
                            f"(expected {_expected_mask(data, path)})")
    for image, mask in masks.items():
        if image in headers and mask in headers:
            a, b = headers[image], headers[mask]
            if (a.width, a.height) != (b.width, b.height):
                problems.append(f"{mask}: mask is {b.width}x{b.height} but its image {image} is "
                                f"{a.width}x{a.height}")
                del headers[mask]
    return problems


def _expected_mask(data: CategoryData, image: str) -> str:
    """Where the indexer looked for an image's mask (beside the other masks)."""
    stem = os.path.splitext(os.path.basename(image))[0]
    defect = os.path.basename(os.path.dirname(image))
    test_dir = os.path.dirname(os.path.dirname(image))
    if os.path.basename(test_dir) == "test":  # MVTec AD layout
        return os.path.join(os.path.dirname(test_dir), "ground_truth", defect, f"{stem}_mask.png")
    return f"{stem}_mask.png or {stem}.png in the mask folder"


def _decode_problem(path: str, header: ImageHeader, is_mask: bool) -> Optional[str]:
    """Decodes ``path`` as the pipeline does; returns what is wrong with it, or None."""
    try:
        contents = tf.io.read_file(path)
        image = tf.io.decode_image(contents, channels=1 if is_mask else 3, dtype=tf.uint8,
                                   expand_animations=False).numpy()
    except tf.errors.OpError as e:
        reason = _op_error_reason(e)
        what = "mask" if is_mask else "image"
        return f"{path}: truncated or corrupt {header.format} {what} ({reason})"
    if image.shape[:2] != (header.height, header.width):
        return (f"{path}: decodes to {image.shape[1]}x{image.shape[0]} but its header says "
                f"{header.width}x{header.height}")
    if is_mask:
        values = np.unique(image)
        if not set(values.tolist()) <= {0, 255}:
            shown = ", ".join(str(v) for v in values[:6]) + (", ..." if values.size > 6 else "")
            hint = " (a 0/1 mask: scale it to 0/255)" if set(values.tolist()) <= {0, 1} else ""
            return f"{path}: mask is not binary: values {shown}; expected only 0 and 255{hint}"
    return None


def _op_error_reason(error: tf.errors.OpError) -> str:
    """The decoder's own words, without TensorFlow's function-node prefix and op suffix."""
    text = (error.message or "").strip().splitlines()
    text = text[0] if text else type(error).__name__
    text = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", text)
    return re.sub(r"\s*\[Op:[^\]]*\].*$", "", text).strip() or type(error).__name__


def format_problems(category: str, problems: Sequence[str]) -> str:
    """One message for many problems: a count, then one line per file (at most MAX_LISTED)."""
    counts = collections.Counter(problems)
    lines = list(counts)[:MAX_LISTED]
    more = len(counts) - len(lines)
    head = (f"{len(counts)} problem(s) in the data of category {category!r}, found before "
            "training:")
    tail = [f"  ... and {more} more"] if more else []
    return "\n".join([head, *(f"  {line}" for line in lines), *tail])
