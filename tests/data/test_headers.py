"""Image headers read without decoding (cutpaste_tf/data/headers.py): the TIFF reader added for
masks; PNG, JPEG and BMP headers are checked in test_bad_input.py."""

import struct

import cv2
import numpy as np
import pytest

from cutpaste_tf.data import DataError, headers


@pytest.mark.parametrize("array, depth, color", [
    (np.zeros((30, 50), np.uint8), 8, "grey"),
    (np.zeros((30, 50), np.uint16), 16, "grey"),
    (np.zeros((30, 50), np.float32), 32, "grey"),
    (np.zeros((30, 50, 3), np.uint8), 8, "RGB"),
    (np.zeros((30, 50, 4), np.uint16), 16, "RGBA"),
])
def test_tiff_header(tmp_path, array, depth, color):
    path = tmp_path / "m.tif"
    assert cv2.imwrite(str(path), array)
    header = headers.read_header(str(path))
    assert (header.format, header.width, header.height) == ("TIFF", 50, 30)
    assert (header.bit_depth, header.color) == (depth, color)


def test_big_endian_and_palette_tiff(tmp_path):
    image_lib = pytest.importorskip("PIL.Image")
    palette = image_lib.frombytes("P", (50, 30), bytes(1500))
    palette.putpalette([0, 0, 0, 255, 0, 0])
    palette.save(tmp_path / "p.tif")
    assert headers.read_header(str(tmp_path / "p.tif")).color == "palette"
    # Big-endian ("MM"), built by hand: four SHORT tags in the value fields.
    entries = b"".join(struct.pack(">HHIH2x", tag, 3, 1, value)
                       for tag, value in ((256, 50), (257, 30), (258, 16), (277, 1)))
    big = b"MM\x00*" + struct.pack(">IH", 8, 4) + entries + struct.pack(">I", 0)
    (tmp_path / "b.tif").write_bytes(big)
    header = headers.read_header(str(tmp_path / "b.tif"))
    assert (header.width, header.height, header.bit_depth, header.color) == (50, 30, 16, "grey")


def test_truncated_tiff_header(tmp_path):
    path = tmp_path / "m.tif"
    assert cv2.imwrite(str(path), np.zeros((30, 50), np.uint8))
    contents = path.read_bytes()
    path.write_bytes(contents[:8])  # the signature and a directory offset past the end
    with pytest.raises(DataError, match=rf"{path}: truncated header \(it points past the end"):
        headers.read_header(str(path))
