"""Thresholds from normal images: held-out split, quantile order statistic, out-of-fold, F1."""

import json
import math

import numpy as np
import pytest

from cutpaste_tf.evaluation import threshold as th


def test_split_is_deterministic_disjoint_and_sized():
    files = [f"img{i:03d}.png" for i in range(60)]
    train, val = th.split_holdout(files, 0.25, seed=3)
    assert (train, val) == th.split_holdout(files, 0.25, seed=3)
    assert len(val) == 15 and len(train) == 45
    assert set(train) | set(val) == set(files) and not set(train) & set(val)
    assert list(val) == sorted(val)  # file order is kept
    assert th.split_holdout(files, 0.25, seed=4)[1] != val
    assert th.split_holdout(files, 0.0, seed=3) == (tuple(files), ())
    assert len(th.split_holdout(files[:5], 0.01, seed=0)[1]) == 1  # at least one


def test_a_datasets_own_validation_images_replace_the_split():
    files = [f"img{i:03d}.png" for i in range(4)]
    given = ["validation/good/000.png", "validation/good/001.png"]
    # The fraction is not applied: all training images train, even where it would leave too few.
    assert th.split_holdout(files, 0.75, seed=0, given=given) == (tuple(files), tuple(given))
    assert th.split_holdout(files, 0.0, seed=0, given=given) == (tuple(files), tuple(given))
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\)"):
        th.split_holdout(files, 1.0, 0, given=given)


def test_split_rejects_bad_fractions():
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\)"):
        th.split_holdout(["a"], 1.0, 0)
    with pytest.raises(ValueError, match="leaves 1 to train on; need at least 2"):
        th.split_holdout(["a", "b", "c", "d"], 0.75, 0)


def test_quantile_is_the_conformal_order_statistic():
    scores = np.random.default_rng(0).permutation(np.arange(1, 100))  # 1..99, n = 99
    cut = th.quantile_threshold(scores, 0.9)
    assert cut.value == 90 and cut.achieved_quantile == pytest.approx(0.9)
    assert cut.num_images == 99 and cut.method == "validation_quantile" and not cut.note
    assert th.quantile_threshold(scores, 0.99).value == 99
    capped = th.quantile_threshold(scores, 0.995)
    assert capped.value == 99 and capped.achieved_quantile == pytest.approx(0.99)
    assert "need 199 for 0.995" in capped.note
    assert not cut.shortfall()
    assert capped.shortfall() == (
        "warning: threshold: 99 images support at most quantile 0.990; need 199 for 0.995; the "
        "threshold is the highest of the 99 normal scores, so expect more than 0.5% of normal "
        "images flagged (hold out more normal images, or ask for a lower quantile)")
    assert not th.Threshold(3.0, "labelled_f1", note="F1 0.9 on the labelled images").shortfall()


def test_quantile_of_a_known_distribution():
    scores = np.random.default_rng(1).standard_normal(20000)
    assert th.quantile_threshold(scores, 0.95).value == pytest.approx(1.6449, abs=0.04)
    assert th.quantile_threshold(scores, 0.5).value == pytest.approx(0.0, abs=0.03)


def test_false_alarm_rate_on_new_normal_images_is_at_most_one_minus_q():
    """The guarantee the README states: with n >= q/(1-q) held-out normal scores, a new normal
    score exceeds the threshold with probability <= 1 - q (here exactly 1/(n+1) = 0.05)."""
    rng = np.random.default_rng(2)
    trials = 4000
    held = rng.gamma(2.0, size=(trials, 19))
    new = rng.gamma(2.0, size=trials)
    cuts = np.array([th.quantile_threshold(h, 0.95).value for h in held])
    assert np.mean(new > cuts) == pytest.approx(0.05, abs=0.012)


def test_quantile_rejects_bad_input():
    with pytest.raises(ValueError, match=r"threshold_quantile must be in \(0, 1\)"):
        th.quantile_threshold([1.0, 2.0], 1.0)
    with pytest.raises(ValueError, match="at least one normal score"):
        th.quantile_threshold([], 0.9)
    with pytest.raises(ValueError, match="1 normal scores are not finite"):
        th.quantile_threshold([1.0, math.nan], 0.5)
    with pytest.raises(ValueError, match="finite"):
        th.Threshold(math.inf, "manual")
    with pytest.raises(ValueError, match="method"):
        th.Threshold(1.0, "test_labels")


def test_out_of_fold_scores_never_see_their_own_row():
    x = np.random.default_rng(3).standard_normal((23, 4))

    def fit(train):  # score = distance to the nearest training row: 0 if the row was seen
        return lambda y: np.min(np.linalg.norm(y[:, None] - train[None], axis=-1), axis=1)

    scores = th.out_of_fold_scores(x, fit, folds=5, seed=0)
    assert scores.shape == (23,) and np.all(scores > 0)
    np.testing.assert_array_equal(scores, th.out_of_fold_scores(x, fit, folds=5, seed=0))
    loo = th.out_of_fold_scores(x[:4], fit, folds=10)  # folds capped at n: leave-one-out
    expected = [fit(np.delete(x[:4], i, axis=0))(x[i:i + 1])[0] for i in range(4)]
    np.testing.assert_allclose(loo, expected)
    with pytest.raises(ValueError, match="at least 3 training images"):
        th.out_of_fold_scores(x[:2], fit)


def test_f1_threshold_and_decision_metrics():
    scores = [1.0, 2.0, 3.0, 2.5, 4.0, 5.0]
    labels = [0, 0, 0, 1, 1, 1]
    cut = th.f1_threshold(scores, labels)
    # score > 2 flags 2.5, 3, 4, 5: F1 = 6/7, the best; halfway to the next score, 2.5.
    assert cut.value == pytest.approx(2.25) and cut.method == "labelled_f1"
    assert "F1 0.8571" in cut.note
    m = th.decision_metrics(scores, labels, cut.value)
    assert m["recall"] == 1.0 and m["false_positive_rate"] == pytest.approx(1 / 3)
    assert m["precision"] == pytest.approx(0.75) and m["f1"] == pytest.approx(6 / 7)
    with pytest.raises(ValueError, match="both normal"):
        th.f1_threshold([1.0, 2.0], [1, 1])


def test_runner_sets_out_of_fold_and_labelled_thresholds():
    """The two paths of image.set_threshold not taken by the launcher test (which holds out)."""
    import pathlib

    import tensorflow as tf

    from cutpaste_tf import data
    from cutpaste_tf.config import ModelConfig, RunConfig, ThresholdConfig, TrainConfig
    from cutpaste_tf.evaluation import evaluate
    from cutpaste_tf.pipeline import build, image

    config = RunConfig(model=ModelConfig(head_widths=()),
                       train=TrainConfig(task="cutpaste", image_size=(32, 32), batch_size=4),
                       threshold=ThresholdConfig(quantile=0.8, folds=4))
    features = np.random.default_rng(5).standard_normal((30, 8)).astype(np.float32)
    estimator = evaluate.fit_features(features, config.density)
    cut, record = image.set_threshold(None, estimator, features, (), None, config)
    assert cut.method == "out_of_fold_quantile" and cut.num_images == 30
    assert cut.value == th.quantile_threshold(record["normal_scores"], 0.8).value
    in_sample = estimator.score(tf.constant(features)).numpy()
    assert np.mean(record["normal_scores"]) > np.mean(in_sample)  # held-out folds score higher

    washer = data.index_mvtec(str(pathlib.Path(__file__).parents[2] / "testdata"), "washer")
    model = build.build_model(config)
    train = evaluate.embed(model, washer.train_files[:20], (32, 32), "pooled")
    estimator = evaluate.fit_features(train, config.density)
    files = washer.test_files[:4] + washer.test_files[-4:]
    labels = washer.test_labels[:4] + washer.test_labels[-4:]
    cut, record = image.set_threshold(model, estimator, train, washer.train_files[20:30],
                                      (files, labels), config)
    assert cut.method == "labelled_f1" and record["labelled_labels"] == list(labels)
    assert record["normal_threshold"]["method"] == "validation_quantile"
    assert len(record["normal_scores"]) == 10
    assert cut.value == th.f1_threshold(record["labelled_scores"], labels).value


def test_a_new_quantile_comes_from_the_stored_normal_scores(tiny_run):
    """launch.export --threshold_quantile: the run's threshold.json holds the normal scores."""
    record = json.loads((tiny_run.model_dir / "washer" / "threshold.json").read_text())
    cut = th.from_record(record, None, 0.5)
    expected = th.quantile_threshold(record["normal_scores"], 0.5)
    assert cut.value == expected.value and cut.quantile == 0.5
    assert cut.method == "validation_quantile" and cut.num_images == 15
