"""Nuisance shifts: each against a NumPy reference, on non-square batches, eagerly and traced."""

import numpy as np
import pytest
import tensorflow as tf
from helpers import coord_images

from cutpaste_tf.ops import shifts
from cutpaste_tf.ops.shifts import Shift

GREY = np.array([0.2989, 0.587, 0.114], np.float32)


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return (0.15 + 0.7 * rng.random((3, 12, 20, 3))).astype(np.float32)


def luma(x):
    return (x * GREY).sum(-1)


@pytest.mark.parametrize("amount", [-0.2, -0.08, 0.1])
def test_brightness_multiplies_and_clips(images, amount):
    out = shifts.apply_shift(images, Shift("brightness", amount)).numpy()
    np.testing.assert_allclose(out, np.clip(images * (1 + amount), 0, 1), atol=1e-6)


@pytest.mark.parametrize("amount", [-0.2, 0.1])
def test_contrast_blends_with_each_images_mean_grey(images, amount):
    out = shifts.apply_shift(images, Shift("contrast", amount)).numpy()
    mean = luma(images).mean(axis=(1, 2))[:, None, None, None]
    np.testing.assert_allclose(out, np.clip(mean + (images - mean) * (1 + amount), 0, 1),
                               atol=1e-5)
    # The mean grey stays (nothing clips here); the spread scales by 1 + amount.
    np.testing.assert_allclose(luma(out).mean(axis=(1, 2)), luma(images).mean(axis=(1, 2)),
                               atol=1e-4)  # torchvision's luma weights sum to 0.9999
    np.testing.assert_allclose(luma(out).std(axis=(1, 2)),
                               (1 + amount) * luma(images).std(axis=(1, 2)), rtol=1e-4)


def test_gamma_and_colour_cast(images):
    np.testing.assert_allclose(shifts.apply_shift(images, Shift("gamma", 1.25)).numpy(),
                               images ** 1.25, rtol=1e-5)
    cast = shifts.apply_shift(images, Shift("color_cast", 0.05)).numpy()
    np.testing.assert_allclose(cast, np.clip(images * [1.05, 1.0, 0.95], 0, 1), atol=1e-6)


def test_translation_moves_down_right_and_repeats_the_edge():
    x = coord_images(2, 16, 32)
    out = shifts.apply_shift(x, Shift("translate", 1 / 16)).numpy()  # 1 row, 2 columns
    np.testing.assert_array_equal(out[:, 1:, 2:], x[:, :-1, :-2])
    np.testing.assert_array_equal(out[:, 0, 2:], x[:, 0, :-2])  # top edge repeated
    np.testing.assert_array_equal(out[:, 1:, 0], x[:, :-1, 0])  # left edge repeated


def test_rotation_by_zero_is_identity_and_a_quarter_turn_is_rot90():
    x = coord_images(2, 9, 9)
    np.testing.assert_allclose(shifts.rotate(tf.constant(x), 0.0).numpy(), x, atol=1e-6)
    turned = shifts.rotate(tf.constant(x), 90.0).numpy()
    np.testing.assert_allclose(turned, np.rot90(x, k=1, axes=(1, 2)), atol=1e-5)


def test_small_rotation_keeps_the_centre_and_moves_corners():
    x = coord_images(1, 21, 31)
    out = shifts.apply_shift(x, Shift("rotate", 5.0)).numpy()
    np.testing.assert_allclose(out[0, 10, 15], x[0, 10, 15], atol=1e-6)
    assert np.abs(out[0, 0, 0] - x[0, 0, 0]).max() > 0.01


def test_blur_keeps_flat_images_and_the_mean_and_smooths():
    flat = np.full((2, 10, 14, 3), 0.4, np.float32)
    np.testing.assert_allclose(shifts.gaussian_blur(tf.constant(flat), 1.0).numpy(), flat,
                               atol=1e-6)
    rng = np.random.default_rng(1)
    x = rng.random((2, 24, 24, 3)).astype(np.float32)
    out = shifts.apply_shift(x, Shift("blur", 1.0)).numpy()
    assert out.std() < 0.5 * x.std()
    np.testing.assert_allclose(out.mean(), x.mean(), atol=0.01)
    assert shifts.gaussian_blur(tf.constant(x), 0.0) is not None


def test_noise_is_seeded_and_has_its_sigma(images):
    a = shifts.apply_shift(images, Shift("noise", 0.02), (1, 2)).numpy()
    b = shifts.apply_shift(images, Shift("noise", 0.02), (1, 2)).numpy()
    c = shifts.apply_shift(images, Shift("noise", 0.02), (1, 3)).numpy()
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0
    assert abs((a - images).std() - 0.02) < 0.002


def test_jpeg_round_trip_is_8_bit_and_close():
    images = coord_images(2, 16, 24)  # smooth: JPEG keeps it (unlike pixel noise)
    out = shifts.apply_shift(images, Shift("jpeg", 75)).numpy()
    assert out.shape == images.shape
    np.testing.assert_allclose(out * 255, np.round(out * 255), atol=1e-4)
    assert 0 < np.abs(out - images).mean() < 0.02


def test_every_default_shift_runs_on_uint8_and_traced(images):
    as_uint8 = np.round(images * 255).astype(np.uint8)
    for shift in shifts.STRESS_SHIFTS:
        eager = shifts.apply_shift(as_uint8, shift).numpy()
        assert eager.shape == images.shape and eager.dtype == np.float32
        assert 0.0 <= eager.min() and eager.max() <= 1.0
        if shift.kind != "jpeg":
            traced = tf.function(lambda x, s=shift: shifts.apply_shift(x, s))(
                tf.constant(as_uint8)).numpy()
            np.testing.assert_allclose(traced, eager, atol=1e-5)


def test_defaults_hold_the_simulated_drift_and_the_target_shifts():
    names = [s.name for s in shifts.STRESS_SHIFTS]
    assert shifts.SIMULATED_DRIFT in shifts.STRESS_SHIFTS
    assert len(set(names)) == len(names)
    assert {"brightness -10%", "brightness +10%", "contrast -10%", "contrast +10%"} <= set(names)
    assert {s.name for s in shifts.STRESS_SHIFTS if s.photometric_10} == {
        "brightness -10%", "brightness -8%", "brightness -5%", "brightness +5%",
        "brightness +10%", "contrast -10%", "contrast +10%"}
    assert set(shifts.KINDS) == {s.kind for s in shifts.STRESS_SHIFTS}


def test_parse_shifts():
    assert shifts.parse_shifts("default") == shifts.STRESS_SHIFTS
    photometric = shifts.parse_shifts("photometric")
    assert photometric and not any(s.geometric for s in photometric)
    assert shifts.parse_shifts("brightness:-0.1, blur:1") == (Shift("brightness", -0.1),
                                                               Shift("blur", 1.0))
    for bad, words in [("glare:1", "unknown shift 'glare'"), ("gamma:0", "gamma must be"),
                       ("jpeg:120", "JPEG quality"), ("brightness", "could not convert"),
                       ("contrast:-1.5", "above -100 %")]:
        with pytest.raises(ValueError, match=words):
            shifts.parse_shifts(bad)


def test_image_statistics_against_numpy(images):
    stats = shifts.image_statistics(tf.constant(images)).numpy()
    grey = luma(images)
    np.testing.assert_allclose(stats[:, 0], grey.mean(axis=(1, 2)), atol=1e-5)
    np.testing.assert_allclose(stats[:, 1], grey.std(axis=(1, 2)), atol=1e-5)
    np.testing.assert_allclose(stats[:, 2], images[..., 0].mean(axis=(1, 2)) - stats[:, 0],
                               atol=1e-5)
    np.testing.assert_allclose(stats[:, 3], images[..., 2].mean(axis=(1, 2)) - stats[:, 0],
                               atol=1e-5)
    darker = shifts.image_statistics(shifts.apply_shift(images, Shift("brightness", -0.1)))
    np.testing.assert_allclose(darker.numpy()[:, :2], 0.9 * stats[:, :2], rtol=1e-4)
