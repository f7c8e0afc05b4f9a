"""The drift stress test's figures, with a score whose response to each shift is known."""

import numpy as np
import pytest

from cutpaste_tf.evaluation import robustness
from cutpaste_tf.evaluation import threshold as threshold_lib
from cutpaste_tf.ops.shifts import STRESS_SHIFTS, Shift


def flat_images(count, level=0.5, seed=0, noise=0.03):
    rng = np.random.default_rng(seed)
    return np.clip(level + rng.normal(0, noise, (count, 16, 16, 3)), 0, 1).astype(np.float32)


def brightness_score(images):
    """Distance of each image's mean from 0.5: blind to the pattern, sees the lamp."""
    return 100 * np.abs(images.mean(axis=(1, 2, 3)) - 0.5)


def pattern_score(images):
    """The image's largest deviation relative to its own mean: sees a square, not the lamp."""
    mean = images.mean(axis=(1, 2, 3), keepdims=True)
    return 100 * np.abs(images / mean - 1).max(axis=(1, 2, 3))


def with_squares(images):
    out = images.copy()
    out[:, 4:9, 4:9, :] = np.clip(out[:, 4:9, 4:9, :] + 0.3, 0, 1)
    return out


@pytest.mark.parametrize("score,fragile", [(brightness_score, True), (pattern_score, False)])
def test_false_alarms_and_auroc_follow_what_the_score_sees(score, fragile):
    normal = flat_images(40)
    normals = robustness.Normals(normal, np.zeros(40, np.int64), [score], "held-out")
    cut = threshold_lib.quantile_threshold(normals.score(normal), 0.95).value
    shifts = (Shift("brightness", -0.1), Shift("brightness", 0.1))
    result = robustness.stress_test(normals, with_squares(flat_images(10, seed=1)), cut, shifts)
    rows = {r["shift"]: r for r in result["rows"]}
    assert rows["none"]["false_alarm_rate"] <= 0.05
    assert rows["none"]["median_shift_sigma"] == 0.0
    s = result["summary"]
    if fragile:  # a 10 % lamp change moves every normal past the threshold
        assert rows["brightness -10%"]["false_alarm_rate"] == 1.0
        assert rows["brightness -10%"]["median_shift_sigma"] > 3
        assert not s["meets_false_alarm_target"] and s["worst_false_alarm_10"] == 1.0
    else:
        assert rows["brightness +10%"]["false_alarm_rate"] <= 0.1
        assert rows["none"]["auroc"] == 1.0 and s["worst_auroc"] > 0.95
        assert s["meets_false_alarm_target"]
    assert s["clean_auroc"] == rows["none"]["auroc"]
    assert s["worst_auroc_drop"] == pytest.approx(s["clean_auroc"] - s["worst_auroc"])
    assert result["num_normal"] == 40 and result["num_anomalies"] == 10


def test_groups_score_each_image_with_its_own_function():
    images = flat_images(6)
    fns = [lambda x: np.zeros(len(x)), lambda x: np.ones(len(x))]
    normals = robustness.Normals(images, np.array([0, 1, 0, 1, 0, 1]), fns, "out-of-fold")
    np.testing.assert_array_equal(normals.score(images), [0, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(normals.score(images[:2]), [0, 0])  # other images: the first
    np.testing.assert_array_equal(normals.score(images[:2], np.array([1, 1])), [1, 1])


def test_scores_see_8_bit_images():
    seen = []
    normals = robustness.Normals(flat_images(2), np.zeros(2, np.int64),
                                 [lambda x: seen.append(x) or np.zeros(len(x))], "held-out")
    normals.score(np.full((2, 4, 4, 3), 0.5012, np.float32))
    np.testing.assert_allclose(seen[0] * 255, np.round(seen[0] * 255), atol=1e-4)


def test_fold_groups_are_the_out_of_fold_thresholds_folds():
    features = np.arange(23, dtype=np.float64)[:, None]
    scored_in = {}

    def fit(train):
        held = set(np.setdiff1d(features[:, 0], train[:, 0]).tolist())

        def score(x):
            for value in x[:, 0]:
                scored_in[value] = frozenset(held)
            return np.zeros(len(x))
        return score

    threshold_lib.out_of_fold_scores(features, fit, folds=5, seed=3)
    groups = robustness.fold_groups(23, 5, 3)
    for i in range(23):
        assert scored_in[float(i)] == frozenset(np.flatnonzero(groups == groups[i]).tolist())


def test_spread_indices_and_synthetic_anomalies():
    np.testing.assert_array_equal(robustness.spread_indices(5, 10), np.arange(5))
    picked = robustness.spread_indices(100, 7)
    assert len(picked) == 7 and picked[0] == 0 and picked[-1] == 99
    normal = flat_images(3)
    anomalies = robustness.synthetic_anomalies(normal, seed=1)
    assert anomalies.shape == (3 * len(robustness.SYNTHETIC_KINDS), 16, 16, 3)
    changed = np.abs(anomalies - np.tile(normal, (len(robustness.SYNTHETIC_KINDS), 1, 1, 1)))
    assert (changed.reshape(len(anomalies), -1).max(axis=1) > 0.05).all()


def test_the_stress_test_needs_images():
    normals = robustness.Normals(flat_images(1), np.zeros(1, np.int64), [brightness_score], "x")
    with pytest.raises(ValueError, match="at least 2 normal images and 1 anomaly"):
        robustness.stress_test(normals, flat_images(1), 1.0, STRESS_SHIFTS[:1])
