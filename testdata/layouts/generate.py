#!/usr/bin/env python3
"""Generate tiny synthetic copies of public inspection datasets, each in its exact published
layout (file and folder names, CSV columns, image formats and mask encodings), for the tests of
``cutpaste_tf.data.layouts``. Nothing is copied from the real datasets.

    python testdata/layouts/generate.py OUT [--layout visa ...]

writes ``OUT/<layout>/`` for each layout:

* ``visa``: ``split_csv/1cls.csv`` (object,split,label,image,mask) and
  ``<object>/Data/Images/{Normal,Anomaly}/*.JPG``, ``<object>/Data/Masks/Anomaly/*.png`` whose
  defect pixels are small integers (1, 2), not 255, as in VisA; objects ``candle`` and
  ``pcb1``.
* ``btad``: ``<nn>/{train/ok,test/ok,test/ko,ground_truth/ko}``; product ``01`` has BMP images
  and PNG masks, ``02`` PNG images and masks, ``03`` BMP images and masks.
* ``mvtec_loco``: ``<category>/{train/good,validation/good,test/good,test/logical_anomalies,
  test/structural_anomalies}`` and ``ground_truth/<type>/<image id>/000.png, 001.png``: the
  first image of each type has two mask files; categories ``breakfast_box`` and
  ``juice_bottle``, each with a ``defects_config.json``.
* ``kolektorsdd2``: ``{train,test}/<id>.png`` with ``<id>_GT.png`` beside each (all zero for a
  normal image, 0/255 otherwise); tall images (96 x 40), and defective training images that a
  run must leave out.
* ``mpdd``: the MVTec AD layout with a category the paper does not know (``bracket_black``),
  and no ``categories.json``.

Images are 64 x 64 (KolektorSDD2 96 x 40) with a smooth seeded background and fine noise; a
defect is a filled disc of another colour, and its mask covers the disc. Counts are in
:data:`COUNTS`.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import cv2
import numpy as np

SEED = 20240616
SIZE = (64, 64)  # height, width
KOLEKTOR_SIZE = (96, 40)
# Per category: normal training images, normal validation images (LOCO), normal test images,
# defective test images per defect type.
COUNTS = {"train": 5, "val": 3, "test_good": 2, "defect": 2}
LAYOUTS = ("visa", "btad", "mvtec_loco", "kolektorsdd2", "mpdd")


def _rng(*key) -> np.random.Generator:
    return np.random.default_rng([SEED, *(sum(map(ord, str(k))) * 131 + i
                                          for i, k in enumerate(key))])


def _image(size: tuple[int, int], *key) -> np.ndarray:
    """A smooth seeded background with fine noise, uint8 BGR."""
    rng = _rng("image", *key)
    h, w = size
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = rng.uniform(60, 180, 3)
    tilt = rng.uniform(-40, 40, (2, 3))
    img = base + y[..., None] * tilt[0] + x[..., None] * tilt[1] + rng.normal(0, 4, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _defect(img: np.ndarray, *key) -> tuple[np.ndarray, np.ndarray]:
    """The image with a filled disc drawn on it, and the disc as a bool mask."""
    rng = _rng("defect", *key)
    h, w = img.shape[:2]
    r = int(rng.integers(4, max(5, min(h, w) // 6)))
    cy, cx = int(rng.integers(r, h - r)), int(rng.integers(r, w - r))
    mask = np.zeros((h, w), np.uint8)
    cv2.circle(mask, (cx, cy), r, 1, -1)
    out = img.copy()
    out[mask > 0] = rng.integers(0, 256, 3)
    return out, mask > 0


def _write(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img):
        raise OSError(f"could not write {path}")


def visa(out: Path) -> None:
    rows = []
    for obj in ("candle", "pcb1"):
        normal = COUNTS["train"] + COUNTS["test_good"]
        for i in range(normal):
            rel = f"{obj}/Data/Images/Normal/{i:04d}.JPG"
            _write(out / rel, _image(SIZE, "visa", obj, "normal", i))
            rows.append([obj, "train" if i < COUNTS["train"] else "test", "normal", rel, ""])
        anno = [["image", "label", "mask"]]
        for i in range(COUNTS["defect"]):
            rel = f"{obj}/Data/Images/Anomaly/{i:03d}.JPG"
            mask_rel = f"{obj}/Data/Masks/Anomaly/{i:03d}.png"
            img, mask = _defect(_image(SIZE, "visa", obj, "anomaly", i), "visa", obj, i)
            _write(out / rel, img)
            _write(out / mask_rel, mask.astype(np.uint8) * (i + 1))  # values 0 and 1, 2, ...
            rows.append([obj, "test", "anomaly", rel, mask_rel])
            anno.append([rel, "spot", mask_rel])
        with open(out / obj / "image_anno.csv", "w", newline="") as f:
            csv.writer(f).writerows(anno)
    (out / "split_csv").mkdir(parents=True, exist_ok=True)
    with open(out / "split_csv" / "1cls.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["object", "split", "label", "image", "mask"])
        writer.writerows(rows)


def btad(out: Path) -> None:
    formats = {"01": (".bmp", ".png"), "02": (".png", ".png"), "03": (".bmp", ".bmp")}
    for product, (ext, mask_ext) in formats.items():
        root = out / product
        for i in range(COUNTS["train"]):
            _write(root / "train" / "ok" / f"{i:04d}{ext}", _image(SIZE, "btad", product, i))
        for i in range(COUNTS["test_good"]):
            _write(root / "test" / "ok" / f"{i:04d}{ext}",
                   _image(SIZE, "btad", product, "test", i))
        for i in range(COUNTS["defect"]):
            img, mask = _defect(_image(SIZE, "btad", product, "ko", i), "btad", product, i)
            _write(root / "test" / "ko" / f"{i:04d}{ext}", img)
            _write(root / "ground_truth" / "ko" / f"{i:04d}{mask_ext}",
                   mask.astype(np.uint8) * 255)


def mvtec_loco(out: Path) -> None:
    types = {"logical_anomalies": 255, "structural_anomalies": 254}
    for category in ("breakfast_box", "juice_bottle"):
        root = out / category
        for split, folder, n in (("train", "good", COUNTS["train"]),
                                 ("validation", "good", COUNTS["val"]),
                                 ("test", "good", COUNTS["test_good"])):
            for i in range(n):
                _write(root / split / folder / f"{i:03d}.png",
                       _image(SIZE, "loco", category, split, i))
        config = []
        for defect, value in types.items():
            config.append({"defect_name": defect.split("_")[0], "pixel_value": value,
                           "saturation_threshold": 100, "relative_saturation": False})
            for i in range(COUNTS["defect"]):
                img = _image(SIZE, "loco", category, defect, i)
                # The first image of each type has two defect regions, each in its own mask.
                parts = 2 if i == 0 else 1
                for j in range(parts):
                    img, mask = _defect(img, "loco", category, defect, i, j)
                    _write(root / "ground_truth" / defect / f"{i:03d}" / f"{j:03d}.png",
                           mask.astype(np.uint8) * value)
                _write(root / "test" / defect / f"{i:03d}.png", img)
        (root / "defects_config.json").write_text(json.dumps(config, indent=2))


def kolektorsdd2(out: Path) -> None:
    ident = 10000
    plan = {"train": [False] * COUNTS["train"] + [True] * 2,  # two defective training images
            "test": [False] * COUNTS["test_good"] + [True] * COUNTS["defect"]}
    for split, defective in plan.items():
        for bad in defective:
            img = _image(KOLEKTOR_SIZE, "ksdd2", ident)
            mask = np.zeros(KOLEKTOR_SIZE, bool)
            if bad:
                img, mask = _defect(img, "ksdd2", ident)
            _write(out / split / f"{ident}.png", img)
            _write(out / split / f"{ident}_GT.png", mask.astype(np.uint8) * 255)
            ident += 1


def mpdd(out: Path) -> None:
    root = out / "bracket_black"
    for i in range(COUNTS["train"]):
        _write(root / "train" / "good" / f"{i:03d}.png", _image(SIZE, "mpdd", "train", i))
    for i in range(COUNTS["test_good"]):
        _write(root / "test" / "good" / f"{i:03d}.png", _image(SIZE, "mpdd", "test", i))
    for i in range(COUNTS["defect"]):
        img, mask = _defect(_image(SIZE, "mpdd", "hole", i), "mpdd", i)
        _write(root / "test" / "hole" / f"{i:03d}.png", img)
        _write(root / "ground_truth" / "hole" / f"{i:03d}_mask.png", mask.astype(np.uint8) * 255)


def generate(out: Path, layouts=LAYOUTS) -> dict[str, Path]:
    """Writes each layout into ``out/<layout>``; returns their roots."""
    writers = {"visa": visa, "btad": btad, "mvtec_loco": mvtec_loco,
               "kolektorsdd2": kolektorsdd2, "mpdd": mpdd}
    roots = {}
    for name in layouts:
        roots[name] = Path(out) / name
        roots[name].mkdir(parents=True, exist_ok=True)
        writers[name](roots[name])
    return roots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write <layout>/ into")
    parser.add_argument("--layout", action="append", choices=LAYOUTS,
                        help="layouts to write (default: all)")
    args = parser.parse_args()
    for name, root in generate(args.out, args.layout or LAYOUTS).items():
        print(f"{name}: {root}")


if __name__ == "__main__":
    main()
