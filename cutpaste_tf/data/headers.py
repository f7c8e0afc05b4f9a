"""What an image file's header says (size, bit depth, colour type), read without decoding it.

PNG, JPEG and BMP are the image formats the pipeline decodes; TIFF is read for masks only
(:mod:`cutpaste_tf.data.masks`). The validator checks these headers before any pixel is decoded,
so a decompression bomb is refused from its header alone.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Optional

import tensorflow as tf

from cutpaste_tf.data.index import DataError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOR = {0: "grey", 2: "RGB", 3: "palette", 4: "grey+alpha", 6: "RGBA"}
# JPEG start-of-frame markers (baseline, progressive, lossless, ...), not DHT / JPG / DAC.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*")
_TIFF_MAX_ENTRIES = 4096  # tags in one directory; more is a corrupt file


@dataclasses.dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says, read without decoding the pixels."""

    format: str  # "PNG", "JPEG", "BMP" or "TIFF"
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


def read_header(path: str) -> ImageHeader:
    """Size, bit depth and colour type of a PNG, JPEG, BMP or TIFF file, from its header only.

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
            if head.startswith(_TIFF_SIGNATURES):
                return _tiff_header(f, head, path)
    except tf.errors.OutOfRangeError:  # a JPEG segment or TIFF directory past the end
        raise DataError(f"{path}: truncated header (it points past the end of the file)"
                        ) from None
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


def _tiff_header(f, head: bytes, path: str) -> ImageHeader:
    """The first image directory of a classic (not Big-) TIFF: size, bits, samples, colour."""
    order = "<" if head.startswith(b"II") else ">"
    if len(head) < 8:
        raise DataError(f"{path}: truncated TIFF header")
    f.seek(struct.unpack(order + "I", head[4:8])[0])
    raw = f.read(2)
    if len(raw) < 2:
        raise DataError(f"{path}: truncated TIFF header (no image directory)")
    count = struct.unpack(order + "H", raw)[0]
    entries = f.read(12 * count)
    if count > _TIFF_MAX_ENTRIES or len(entries) < 12 * count:
        raise DataError(f"{path}: truncated or corrupt TIFF image directory")
    tags = {}
    for i in range(count):
        tag, kind, n, value = struct.unpack(order + "HHI4s", entries[12 * i:12 * i + 12])
        if kind == 3 and n <= 2:  # SHORT values sit in the value field
            tags[tag] = struct.unpack(order + "H", value[:2])[0]
        elif kind == 4 and n == 1:  # one LONG fills it
            tags[tag] = struct.unpack(order + "I", value)[0]
        elif kind == 3:  # several SHORTs (BitsPerSample of RGB): the field holds their offset
            f.seek(struct.unpack(order + "I", value)[0])
            first = f.read(2)
            if len(first) < 2:
                raise DataError(f"{path}: truncated TIFF header (tag {tag})")
            tags[tag] = struct.unpack(order + "H", first)[0]
    if 256 not in tags or 257 not in tags:
        raise DataError(f"{path}: corrupt TIFF header (no image width or height)")
    samples = tags.get(277, 1)
    color = "palette" if tags.get(262) == 3 else {1: "grey", 2: "grey+alpha", 3: "RGB",
                                                  4: "RGBA"}.get(samples, f"{samples}-channel")
    return ImageHeader("TIFF", tags[256], tags[257], tags.get(258, 1), color)
