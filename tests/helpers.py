"""Test inputs shared by the augmentation tests."""

import numpy as np


def coord_images(batch: int, height: int, width: int) -> np.ndarray:
    """Float32 images whose pixel (b, y, x) holds (y / (H - 1), x / (W - 1), (b + 1) / (B + 1)):
    every pixel is distinct, so an op's output shows where each value came from."""
    img = np.zeros((batch, height, width, 3), np.float32)
    img[..., 0] = (np.arange(height, dtype=np.float32) / (height - 1))[:, None]
    img[..., 1] = (np.arange(width, dtype=np.float32) / (width - 1))[None, :]
    img[..., 2] = ((np.arange(batch, dtype=np.float32) + 1) / (batch + 1))[:, None, None]
    return img
