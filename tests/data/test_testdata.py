"""Checks for the synthetic MVTec-AD-style dataset committed under ``testdata/``."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import ROOT

TESTDATA = ROOT / "testdata"

EXPECTED = {
    "fabric": {"size": (128, 128), "defects": {"hole", "stain", "cut"}},
    "washer": {"size": (112, 144), "defects": {"scratch", "missing", "stain"}},
}
N_TRAIN_GOOD, N_TEST_GOOD, N_PER_DEFECT = 60, 12, 8


def _pngs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.png"))


def _read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, f"unreadable image {path}"
    return img


@pytest.fixture(scope="module")
def generator():
    spec = importlib.util.spec_from_file_location("testdata_generate", TESTDATA / "generate.py")
    mod = importlib.util.module_from_spec(spec)
    old, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # keep testdata/ free of __pycache__
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.dont_write_bytecode = old
    return mod


def test_categories_json():
    meta = json.loads((TESTDATA / "categories.json").read_text())
    assert meta == {
        "fabric": {"kind": "texture", "aligned": False},
        "washer": {"kind": "object", "aligned": True},
    }
    for cat in meta:
        assert (TESTDATA / cat).is_dir()


@pytest.mark.parametrize("cat", sorted(EXPECTED))
def test_layout_counts_and_sizes(cat):
    root = TESTDATA / cat
    h, w = EXPECTED[cat]["size"]
    assert sorted(p.name for p in root.iterdir()) == ["ground_truth", "test", "train"]
    assert sorted(p.name for p in (root / "train").iterdir()) == ["good"]
    test_types = {p.name for p in (root / "test").iterdir()}
    assert test_types == {"good"} | EXPECTED[cat]["defects"]
    # good images never have masks
    assert {p.name for p in (root / "ground_truth").iterdir()} == EXPECTED[cat]["defects"]

    train = _pngs(root / "train" / "good")
    assert [p.name for p in train] == [f"{k:03d}.png" for k in range(N_TRAIN_GOOD)]
    assert len(list((root / "train" / "good").iterdir())) == N_TRAIN_GOOD
    good = _pngs(root / "test" / "good")
    assert [p.name for p in good] == [f"{k:03d}.png" for k in range(N_TEST_GOOD)]

    for p in train + good:
        img = _read_rgb(p)
        assert img.shape == (h, w, 3) and img.dtype == np.uint8, p

    for defect in EXPECTED[cat]["defects"]:
        imgs = _pngs(root / "test" / defect)
        assert [p.name for p in imgs] == [f"{k:03d}.png" for k in range(N_PER_DEFECT)]
        masks = sorted((root / "ground_truth" / defect).iterdir())
        assert [p.name for p in masks] == [f"{p.stem}_mask.png" for p in imgs]
        for ip, mp in zip(imgs, masks):
            img = _read_rgb(ip)
            assert img.shape == (h, w, 3) and img.dtype == np.uint8, ip
            mask = cv2.imread(str(mp), cv2.IMREAD_UNCHANGED)
            assert mask is not None and mask.dtype == np.uint8, mp
            assert mask.shape == (h, w), mp  # single channel, same size as the image
            assert set(np.unique(mask).tolist()) == {0, 255}, mp  # binary and non-empty
            frac = (mask > 0).mean()
            assert 0.002 < frac < 0.1, (mp, frac)


def test_regeneration_is_pixel_identical(generator, tmp_path):
    # PNG compression level does not affect pixels; a fast level keeps this test quick.
    written = generator.generate(tmp_path, png_compression=1)
    committed = sorted(
        p.relative_to(TESTDATA).as_posix()
        for cat in EXPECTED
        for p in (TESTDATA / cat).rglob("*")
        if p.is_file()
    )
    assert sorted(written) == committed
    assert json.loads((tmp_path / "categories.json").read_text()) == json.loads(
        (TESTDATA / "categories.json").read_text()
    )
    mismatched = []
    for rel in written:
        a = cv2.imread(str(TESTDATA / rel), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(tmp_path / rel), cv2.IMREAD_UNCHANGED)
        if a is None or b is None or a.shape != b.shape or not np.array_equal(a, b):
            mismatched.append(rel)
    assert not mismatched, f"{len(mismatched)} files differ, e.g. {mismatched[:5]}"
