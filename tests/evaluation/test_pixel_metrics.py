"""Tests for the pixel-level metrics in cutpaste_tf.evaluation.metrics: pixel AUROC and AU-PRO."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from cutpaste_tf.evaluation import metrics


def test_aupro_single_region_by_hand():
    # Normal pixels score 0.1 and 0.4, the region's two pixels 0.3 and 0.9.
    # Thresholds from the top: 0.9 -> (FPR 0, PRO 1/2); 0.4 -> (1/2, 1/2); 0.3 -> (1/2, 1);
    # so on FPR in [0, 0.3] PRO is 1/2: area 0.15, normalised by 0.3 -> 0.5.
    maps = np.array([[[0.1, 0.4, 0.3, 0.9]]])
    masks = np.array([[[0, 0, 1, 1]]])
    assert metrics.aupro(maps, masks) == pytest.approx(0.5)


def test_aupro_averages_over_regions_not_pixels_by_hand():
    # Image 1: a 1-pixel region scoring 5 and a 3-pixel region scoring 2, 2, 0; image 2: normal.
    # The 11 normal pixels score 0.05, 0..0.2 and 0.3..0.8, and one of them 3.
    maps = np.zeros((2, 1, 7))
    masks = np.zeros((2, 1, 7), bool)
    maps[0, 0, :4] = [5.0, 0.05, 2.0, 2.0]
    masks[0, 0, [0, 2, 3]] = True
    maps[0, 0, 4:] = [0.0, 0.1, 0.2]
    maps[1, 0, :] = [0.3, 0.4, 0.5, 0.6, 0.7, 3.0, 0.8]
    # Connected regions (8-connectivity on one row): {0} and {2, 3}: two regions.
    # Thresholds: 5 -> FPR 0, PRO (1 + 0) / 2 = 0.5; 3 -> FPR 1/11, PRO 0.5;
    # 2 -> FPR 1/11, PRO (1 + 1) / 2 = 1. Area up to 0.3: 0.5 * 1/11 + 1 * (0.3 - 1/11).
    expected = (0.5 / 11 + (0.3 - 1 / 11)) / 0.3
    assert metrics.aupro(maps, masks) == pytest.approx(expected)


def test_aupro_perfect_and_inverted_maps():
    rng = np.random.default_rng(0)
    masks = np.zeros((3, 16, 16), bool)
    masks[0, 2:6, 3:9] = True
    masks[1, 10:15, 10:12] = True
    maps = rng.uniform(size=masks.shape) * 0.5 + masks
    assert metrics.aupro(maps, masks) == pytest.approx(1.0)
    assert metrics.aupro(-maps, masks) == pytest.approx(0.0)


def test_pixel_auroc_exact_equals_sklearn_and_binned_is_close():
    rng = np.random.default_rng(1)
    masks = rng.uniform(size=(4, 20, 24)) < 0.1
    maps = rng.normal(size=masks.shape) + 1.5 * masks
    exact = metrics.pixel_auroc(maps, masks)
    assert exact == pytest.approx(roc_auc_score(masks.reshape(-1), maps.reshape(-1)))
    binned = metrics.pixel_auroc(maps, masks, max_exact_pixels=100)
    assert binned == pytest.approx(exact, abs=1e-3)


def test_pixel_metrics_refuse_bad_input():
    with pytest.raises(ValueError, match="shape"):
        metrics.pixel_auroc(np.zeros((2, 4, 4)), np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match="both"):
        metrics.aupro(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="NaN"):
        metrics.pixel_auroc(np.full((1, 2, 2), np.nan), np.eye(2)[None])
