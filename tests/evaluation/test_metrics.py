"""Tests for cutpaste_tf.evaluation.metrics (the transcribed paper numbers: tests/reporting/test_paper.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cutpaste_tf.evaluation import metrics

# --- auroc -----------------------------------------------------------------------------------


def test_auroc_hand_made_cases():
    assert metrics.auroc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert metrics.auroc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert metrics.auroc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    # One of four positive/negative pairs is mis-ordered: 3/4.
    assert metrics.auroc([0, 0, 1, 1], [0.1, 0.6, 0.5, 0.9]) == pytest.approx(0.75)
    assert metrics.auroc(np.array([False, True]), np.array([1.0, 2.0])) == 1.0


def test_auroc_errors():
    with pytest.raises(ValueError, match="only normal"):
        metrics.auroc([0, 0, 0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="only anomalous"):
        metrics.auroc([1, 1], [1.0, 2.0])
    with pytest.raises(ValueError, match="3 labels but 2 scores"):
        metrics.auroc([0, 1, 1], [1.0, 2.0])
    with pytest.raises(ValueError, match="1 of 3 scores are NaN"):
        metrics.auroc([0, 1, 1], [1.0, float("nan"), 2.0])
    with pytest.raises(ValueError, match="0 .normal. or 1"):
        metrics.auroc([0, 2], [1.0, 2.0])


# --- mean_and_stderr / summarize ----------------------------------------------------------------


def test_mean_and_stderr():
    mean, se = metrics.mean_and_stderr([1.0, 2.0, 3.0, 4.0, 5.0])
    assert mean == pytest.approx(3.0)
    # Sample std (ddof=1) of 1..5 is sqrt(2.5); se = sqrt(2.5)/sqrt(5) = sqrt(0.5).
    assert se == pytest.approx(math.sqrt(0.5))
    assert metrics.mean_and_stderr([0.7]) == (0.7, None)  # one seed: no standard error
    assert metrics.seed_stat([0.7]) == {"mean": 0.7, "se": None, "n": 1}
    with pytest.raises(ValueError):
        metrics.mean_and_stderr([])


def test_summarize_averages_means_and_stderrs():
    per_category = {
        "carpet": [0.90, 0.92, 0.94],  # mean 0.92, sample std 0.02, se 0.02 / sqrt(3)
        "grid": 0.80,
        "bottle": [1.0, 0.98],
        "my_part": [0.6, 0.7, 0.8, 0.9],
    }
    kinds = {"carpet": "texture", "grid": "texture", "bottle": "object", "my_part": "object"}
    s = metrics.summarize(per_category, kinds)
    pc = s["per_category"]
    expected = {c: metrics.mean_and_stderr(np.atleast_1d(v)) for c, v in per_category.items()}
    for c in per_category:
        assert pc[c][0] == pytest.approx(expected[c][0])
        assert pc[c][1] == (None if expected[c][1] is None else pytest.approx(expected[c][1]))
    assert pc["carpet"][1] == pytest.approx(0.02 / math.sqrt(3))
    assert s["num_values"] == {"carpet": 3, "grid": 1, "bottle": 2, "my_part": 4}
    av = s["averages"]
    # grid has one value, hence no standard error, hence none for the groups it is in.
    assert av["texture"][0] == pytest.approx((0.92 + 0.80) / 2) and av["texture"][1] is None
    assert av["object"][0] == pytest.approx((0.99 + 0.75) / 2)
    assert av["object"][1] == pytest.approx((expected["bottle"][1] + expected["my_part"][1]) / 2)
    # "all" averages over the four categories, not over the two group averages.
    assert av["all"][0] == pytest.approx((0.92 + 0.80 + 0.99 + 0.75) / 4)
    assert av["all"][1] is None
    without_grid = metrics.summarize({c: v for c, v in per_category.items() if c != "grid"}, kinds)
    assert without_grid["averages"]["all"][1] == pytest.approx(
        np.mean([e[1] for c, e in expected.items() if c != "grid"]))


def test_summarize_only_present_groups_and_errors():
    s = metrics.summarize({"bottle": 0.9})  # default kinds: the MVTec grouping
    assert set(s["averages"]) == {"object", "all"}
    with pytest.raises(ValueError, match="no kind given for category 'foo'"):
        metrics.summarize({"foo": 0.9}, {"bar": "texture"})
    with pytest.raises(ValueError, match="expected one of"):
        metrics.summarize({"foo": 0.9}, {"foo": "animal"})
