"""Tests for cutpaste_tf.localization.upsample: Gaussian receptive-field upsampling."""

from __future__ import annotations

import numpy as np
import pytest

from cutpaste_tf.localization import upsample


def test_gaussian_kernel_is_symmetric_and_peaks_at_the_centre():
    k = upsample.gaussian_kernel(32, 8.0)
    assert k.shape == (32, 32)
    np.testing.assert_allclose(k, k.T)
    np.testing.assert_allclose(k, k[::-1, ::-1])
    assert k.argmax() in {15 * 32 + 15, 15 * 32 + 16, 16 * 32 + 15, 16 * 32 + 16}
    # sigma = patch / 4: e^-2 of the peak at the middle of an edge (half a pixel inside).
    assert k[0, 15] / k[15, 15] == pytest.approx(np.exp(-0.5 * (15.5 / 8) ** 2) /
                                                  np.exp(-0.5 * (0.5 / 8) ** 2))


@pytest.mark.parametrize("size,patch,stride", [((64, 64), 16, 4), ((66, 70), 16, 4),
                                               ((256, 256), 32, 4)])
def test_constant_map_stays_constant(size, patch, stride):
    rows, cols = (size[0] - patch) // stride + 1, (size[1] - patch) // stride + 1
    out = upsample.upsample(np.full((2, rows, cols), 3.5, np.float32), size, patch, stride,
                            patch / 4).numpy()
    assert out.shape == (2, *size)
    np.testing.assert_allclose(out, 3.5, rtol=1e-5)


def test_single_hot_cell_gives_a_gaussian_blob_centred_on_its_patch():
    size, patch, stride, sigma = (64, 64), 16, 4, 4.0
    scores = np.zeros((1, 13, 13), np.float32)
    i, j = 6, 3                                 # patch rows 24..39, cols 12..27: centre (32, 20)
    scores[0, i, j] = 1.0
    out = upsample.upsample(scores, size, patch, stride, sigma).numpy()[0]
    cy, cx = i * stride + patch / 2, j * stride + patch / 2
    # Outside the patch nothing; inside a blob whose peak sits at the patch centre.
    inside = np.zeros(size, bool)
    inside[i * stride:i * stride + patch, j * stride:j * stride + patch] = True
    assert np.all(out[~inside] == 0) and np.all(out[inside] > 0)
    peak = np.unravel_index(out.argmax(), size)
    assert abs(peak[0] + 0.5 - cy) <= 1.0 and abs(peak[1] + 0.5 - cx) <= 1.0
    ys, xs = np.nonzero(inside)
    weights = out[inside]
    assert np.sum(weights * (ys + 0.5)) / weights.sum() == pytest.approx(cy, abs=0.2)
    assert np.sum(weights * (xs + 0.5)) / weights.sum() == pytest.approx(cx, abs=0.2)
    # Radially decreasing from the centre along a row and a column.
    row = out[int(cy), j * stride:j * stride + patch]
    assert np.all(np.diff(row[: patch // 2]) >= 0) and np.all(np.diff(row[patch // 2:]) <= 0)
    col = out[i * stride:i * stride + patch, int(cx)]
    assert np.all(np.diff(col[: patch // 2]) >= 0) and np.all(np.diff(col[patch // 2:]) <= 0)


def test_border_rows_beyond_the_last_patch_repeat_the_last_covered_row():
    rng = np.random.default_rng(0)
    scores = rng.uniform(size=(1, 13, 14)).astype(np.float32)
    out = upsample.upsample(scores, (66, 70), 16, 4, 4.0).numpy()[0]  # covers 64 x 68
    np.testing.assert_array_equal(out[64], out[63])
    np.testing.assert_array_equal(out[65], out[63])
    np.testing.assert_array_equal(out[:, 69], out[:, 67])
    assert out.min() >= scores.min() - 1e-6 and out.max() <= scores.max() + 1e-6
