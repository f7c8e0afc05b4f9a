"""Feature arrays for the density tests (this folder is on sys.path while they run)."""

from __future__ import annotations

import numpy as np


def features(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Correlated, non-centred random features like a network's pooled outputs."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    return (rng.normal(size=(n, d)) @ mix + rng.uniform(0.5, 2.0, size=d)).astype(np.float32)


def l2n(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)
