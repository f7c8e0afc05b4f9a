"""Helpers shared by the tests: position-coded images, a small copy of testdata, and the
paper's text."""

import numpy as np


def coord_images(batch: int, height: int, width: int) -> np.ndarray:
    """Float32 images whose pixel (b, y, x) holds (y / (H - 1), x / (W - 1), (b + 1) / (B + 1)):
    every pixel is distinct, so an op's output shows where each value came from."""
    img = np.zeros((batch, height, width, 3), np.float32)
    img[..., 0] = (np.arange(height, dtype=np.float32) / (height - 1))[:, None]
    img[..., 1] = (np.arange(width, dtype=np.float32) / (width - 1))[None, :]
    img[..., 2] = ((np.arange(batch, dtype=np.float32) + 1) / (batch + 1))[:, None, None]
    return img


def copy_washer(tmp_path, scratch: int):
    """A copy of testdata's washer under ``tmp_path/data``: 3 train and 2 good test images, and
    the first ``scratch`` scratch images with their masks; returns the data root."""
    import pathlib
    import shutil

    source = pathlib.Path(__file__).resolve().parents[1] / "testdata" / "washer"
    base = tmp_path / "data" / "washer"
    copies = [f"train/good/00{i}.png" for i in range(3)] + [f"test/good/00{i}.png" for i in range(2)]
    copies += [f"test/scratch/00{i}.png" for i in range(scratch)]
    copies += [f"ground_truth/scratch/00{i}_mask.png" for i in range(scratch)]
    for rel in copies:
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source / rel, base / rel)
    return tmp_path / "data"


def paper_text() -> str:
    """The paper's text (``shared/paper/cutpaste_cvpr2021.txt`` beside or inside the checkout),
    or skip the calling test, saying why: the paper is not shipped with the package."""
    import pathlib

    import pytest

    root = pathlib.Path(__file__).resolve().parents[1]
    for base in (root / "shared", root.parent / "shared"):
        path = base / "paper" / "cutpaste_cvpr2021.txt"
        if path.exists():
            return path.read_text(encoding="utf-8")
    pytest.skip("paper text (shared/paper/cutpaste_cvpr2021.txt) not found beside the checkout; "
                "the published numbers in cutpaste_tf/reporting/paper.py are checked only where it is")
