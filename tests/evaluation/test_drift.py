"""Drift signals: image statistics and scores against a reference, their bounds and wording."""

import numpy as np
import pytest

from cutpaste_tf.evaluation import drift


def reference(rng, n=60, grey=0.6, grey_sd=0.01, threshold=True):
    stats = np.stack([rng.normal(grey, grey_sd, n), rng.normal(0.2, 0.01, n),
                      rng.normal(0.0, 0.003, n), rng.normal(0.0, 0.003, n)], axis=1)
    scores = rng.normal(30.0, 2.0, 40)
    cut = float(np.quantile(scores, 0.95)) if threshold else None
    return drift.reference(stats, scores, cut, 0.95 if threshold else None), stats, scores


def batch_stats(rng, n, grey=0.6, contrast=0.2, red=0.0):
    return np.stack([rng.normal(grey, 0.01, n), rng.normal(contrast, 0.01, n),
                     rng.normal(red, 0.003, n), rng.normal(0.0, 0.003, n)], axis=1)


def test_reference_holds_medians_spreads_and_sorted_scores():
    rng = np.random.default_rng(0)
    ref, stats, scores = reference(rng)
    grey = ref["statistics"]["mean_grey"]
    assert grey["median"] == pytest.approx(np.median(stats[:, 0]))
    assert grey["sigma"] == pytest.approx(0.01, rel=0.35) and grey["num_images"] == 60
    assert ref["scores"]["values"] == sorted(ref["scores"]["values"])
    assert ref["scores"]["quantiles"]["0.99"] == pytest.approx(np.quantile(scores, 0.99))
    assert ref["threshold"] == pytest.approx(np.quantile(scores, 0.95))
    assert ref["expected_share_above"] == pytest.approx(0.05)
    manual = drift.with_threshold(ref, 35.0)  # no quantile: the reference's own share above
    assert manual["expected_share_above"] == pytest.approx(np.mean(scores > 35.0))
    assert drift.with_threshold(ref, None)["threshold"] is None


def test_darker_images_drift_and_the_same_capture_does_not():
    rng = np.random.default_rng(1)
    ref, _, _ = reference(rng)
    darker = drift.compare_statistics(batch_stats(rng, 20, grey=0.6 * 0.92), ref)
    assert darker["mean_grey"]["drifted"] and darker["mean_grey"]["z"] < -3
    assert not darker["contrast"]["drifted"]
    # The same capture: over many seeded sets, (almost) never flagged.
    flagged = [any(v["drifted"] for v in drift.compare_statistics(
        batch_stats(np.random.default_rng(s), 20), ref).values()) for s in range(200)]
    assert np.mean(flagged) <= 0.02


def test_a_difference_must_clear_the_floor_and_be_significant():
    rng = np.random.default_rng(2)
    ref, _, _ = reference(rng, grey_sd=0.002)
    # 2% darker: many standard errors, but under the 4% floor.
    assert not drift.compare_statistics(batch_stats(rng, 200, grey=0.6 * 0.98),
                                        ref)["mean_grey"]["drifted"]
    # 10% darker on too few images says nothing.
    few = batch_stats(rng, drift.MIN_IMAGES - 1, grey=0.54)
    assert not drift.compare_statistics(few, ref)["mean_grey"]["drifted"]
    # A red cast of 0.02 (5 levels) is beyond the casts' floor.
    assert drift.compare_statistics(batch_stats(rng, 20, red=0.02), ref)["red_cast"]["drifted"]


def test_scores_above_the_reference_and_too_many_above_the_threshold():
    rng = np.random.default_rng(3)
    ref, _, _ = reference(rng)
    same = drift.compare_scores(rng.normal(30.0, 2.0, 30), ref)
    assert not same["scores_above"] and not same["too_many_above"]
    assert abs(same["p_above"] - 0.5) < 0.2
    higher = drift.compare_scores(rng.normal(36.0, 2.0, 30), ref)
    assert higher["scores_above"] and higher["too_many_above"]
    assert higher["median_shift_sigma"] > 2 and higher["z"] > 3
    assert higher["share_above"] > higher["share_bound"] >= 2 * 0.05
    # Systematically but slightly higher: significant, yet under one spread.
    big = drift.reference(np.zeros([0, 4]), rng.normal(30.0, 2.0, 1000))
    slight = drift.compare_scores(rng.normal(31.0, 2.0, 400), big)
    assert slight["z"] > 3 and not slight["scores_above"]


def test_check_and_describe():
    rng = np.random.default_rng(4)
    ref, _, _ = reference(rng)
    clean = drift.check(batch_stats(rng, 20), rng.normal(30.0, 2.0, 20), ref)
    assert not clean["drifted"] and drift.describe(clean) == ""
    bad = drift.check(batch_stats(rng, 20, grey=0.55), rng.normal(38.0, 2.0, 20), ref)
    line = drift.describe(bad, "the test normals", "held-out training normals")
    assert bad["drifted"]
    assert line.startswith("the test normals score above held-out training normals (median ")
    assert "are above the threshold (expected 5%" in line
    assert "differ from the training images (mean grey 140 vs 153)" in line
    only_stats = drift.check(batch_stats(rng, 20, grey=0.55), None, ref)
    assert only_stats["drifted"] and "scores" not in only_stats


def test_robust_sigma():
    assert drift.robust_sigma([1.0]) == 0.0
    assert drift.robust_sigma([2.0, 2.0, 2.0, 2.0, 10.0]) == pytest.approx(
        np.std([2.0, 2.0, 2.0, 2.0, 10.0]))
    x = np.random.default_rng(5).normal(0, 3.0, 20000)
    assert drift.robust_sigma(x) == pytest.approx(3.0, rel=0.03)
