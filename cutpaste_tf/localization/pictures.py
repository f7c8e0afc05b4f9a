"""Heatmap pictures: per test image, the image beside its heatmap overlay with the ground-truth
contour; per category, a grid of all of them. OpenCV only; written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import cv2
import numpy as np

from cutpaste_tf import files

CONTOUR_BGR = (0, 255, 0)  # ground truth in green, so it stands out on the JET colour map


def color_scale(maps: np.ndarray) -> tuple[float, float]:
    """One (low, high) for all of a category's maps (1st and 99.9th percentile), so heatmaps
    of different images are comparable."""
    lo, hi = np.percentile(np.asarray(maps, np.float32), [1.0, 99.9])
    return float(lo), float(max(hi, lo + 1e-6))


def panel(image: np.ndarray, heatmap: np.ndarray, mask: np.ndarray | None,
          scale: tuple[float, float], alpha: float = 0.5, min_side: int = 128) -> np.ndarray:
    """uint8 BGR ``[h, 2w, 3]``: the image | heatmap overlay with the ground-truth contour.

    ``image`` is float RGB in [0, 1] ``[H, W, 3]``, ``heatmap`` ``[H, W]`` scores, ``mask``
    ``[H, W]`` (or None for normal images). Small images are enlarged by an integer factor
    (nearest neighbour) until their shorter side is at least ``min_side``, to be viewable.
    """
    factor = max(1, -(-min_side // min(np.shape(heatmap)[:2])))
    if factor > 1:
        image = np.repeat(np.repeat(np.asarray(image), factor, 0), factor, 1)
        heatmap = np.repeat(np.repeat(np.asarray(heatmap), factor, 0), factor, 1)
        if mask is not None:
            mask = np.repeat(np.repeat(np.asarray(mask), factor, 0), factor, 1)
    rgb = np.clip(np.asarray(image, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    lo, hi = scale
    level = np.clip((np.asarray(heatmap, np.float32) - lo) / (hi - lo), 0.0, 1.0)
    colored = cv2.applyColorMap((level * 255.0 + 0.5).astype(np.uint8), cv2.COLORMAP_JET)
    overlay = cv2.addWeighted(bgr, 1.0 - alpha, colored, alpha, 0.0)
    if mask is not None and np.any(mask):
        contours, _ = cv2.findContours(np.asarray(mask).astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(overlay, contours, -1, CONTOUR_BGR, 1)
    return np.concatenate([bgr, overlay], axis=1)


def write_png(path: str, picture: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", picture)
    if not ok:
        raise ValueError(f"could not encode a PNG for {path}")
    files.write_bytes(path, data.tobytes())


def grid(panels: Sequence[np.ndarray], columns: int = 6) -> np.ndarray:
    """Tiles equally sized panels row by row (blank cells fill the last row)."""
    if not panels:
        raise ValueError("no panels to tile")
    h, w, c = panels[0].shape
    rows = (len(panels) + columns - 1) // columns
    out = np.full((rows * h, min(columns, len(panels)) * w, c), 255, np.uint8)
    for k, p in enumerate(panels):
        r, q = divmod(k, columns)
        out[r * h:(r + 1) * h, q * w:(q + 1) * w] = p
    return out


def write_category(out_dir: str, names: Sequence[str], images: np.ndarray, maps: np.ndarray,
                   masks: np.ndarray, category: str) -> list[str]:
    """Writes ``<out_dir>/<name>.png`` per test image and ``<out_dir>/<category>_grid.png``.

    ``names`` are relative names such as ``"scratch/003"``; ``masks`` all-zero for normal
    images. Returns the written paths.
    """
    scale = color_scale(maps)
    panels, written = [], []
    for name, image, heatmap, mask in zip(names, images, maps, masks):
        p = panel(image, heatmap, mask, scale)
        path = os.path.join(out_dir, f"{name}.png")
        write_png(path, p)
        panels.append(p)
        written.append(path)
    path = os.path.join(out_dir, f"{category}_grid.png")
    write_png(path, grid(panels))
    return written + [path]
