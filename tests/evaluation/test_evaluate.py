"""Evaluation: features of un-augmented images, the density fit, AUROC per defect, the CSV."""

import csv
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from cutpaste_tf import data
from cutpaste_tf.config import DensityConfig
from cutpaste_tf.data import CategoryData
from cutpaste_tf.evaluation import evaluate
from cutpaste_tf.models import build_cutpaste_model

TESTDATA = str(pathlib.Path(__file__).resolve().parents[2] / "testdata")


def _category():
    return CategoryData(
        name="toy", kind="object", aligned=False, train_files=("t0",),
        test_files=("g0", "g1", "a0", "a1", "b0"), test_labels=(0, 0, 1, 1, 1),
        test_defects=("good", "good", "a", "a", "b"), mask_files=(None,) * 5)


def test_evaluate_overall_and_per_defect_auroc():
    scores = np.array([0.1, 0.4, 0.9, 0.3, 0.5])
    result = evaluate.evaluate(scores, _category())
    # Overall: pairs (anomalous > normal): a0 beats both, a1 beats 1 of 2, b0 beats both -> 5/6.
    assert result["auroc"] == pytest.approx(5 / 6)
    assert result["auroc_per_defect"] == {"a": pytest.approx(3 / 4), "b": pytest.approx(1.0)}
    assert result["num_test_normal"] == 2 and result["num_test_anomalous"] == 3
    assert result["num_test_per_defect"] == {"a": 2, "b": 1}


def test_evaluate_rejects_non_finite_scores_naming_images():
    with pytest.raises(ValueError, match="non-finite scores.*a0"):
        evaluate.evaluate(np.array([0.1, 0.2, np.nan, 0.3, 0.4]), _category())


def test_write_scores_csv(tmp_path):
    path = tmp_path / "scores.csv"
    evaluate.write_scores(str(path), _category(), np.array([0.1, 0.2, 0.3, 0.4, 0.123456789]))
    rows = list(csv.DictReader(path.open()))
    assert [r["path"] for r in rows] == ["g0", "g1", "a0", "a1", "b0"]
    assert rows[4]["defect"] == "b" and rows[4]["label"] == "1"
    assert float(rows[4]["score"]) == pytest.approx(0.123456789, rel=1e-8)


def _washer_and_model(num_train: int, head_width: int):
    """Testdata's washer with its first ``num_train`` training images, and a seeded, untrained
    32x32 3-class model."""
    washer = data.index_mvtec(TESTDATA, "washer")
    subset = CategoryData(**{**washer.__dict__, "train_files": washer.train_files[:num_train]})
    tf.keras.utils.set_random_seed(0)
    return subset, build_cutpaste_model(3, head_widths=(head_width,), input_shape=(32, 32, 3))


def test_density_is_fit_on_unaugmented_training_features():
    subset, model = _washer_and_model(12, 32)
    estimator = evaluate.fit_density(model, subset, (32, 32), DensityConfig(), batch_size=5)
    features = evaluate.embed(model, subset.train_files, (32, 32), "pooled", batch_size=7)
    assert features.shape == (12, 512)
    normed = features / np.linalg.norm(features, axis=1, keepdims=True)
    np.testing.assert_allclose(estimator.mean.numpy(), normed.mean(axis=0), atol=1e-5)
    # Scores of files equal scores of their features.
    scores = evaluate.score_images(model, estimator, subset.test_files[:3], (32, 32), "pooled")
    direct = estimator.score(tf.constant(evaluate.embed(model, subset.test_files[:3], (32, 32),
                                                        "pooled"))).numpy()
    np.testing.assert_allclose(scores, direct, rtol=1e-5)


def test_embedding_feature_and_kde_option():
    subset, model = _washer_and_model(8, 16)
    kde = evaluate.fit_density(model, subset, (32, 32),
                               DensityConfig(kind="kde", feature="embedding", kde_gamma=3.0))
    assert kde.kind == "kde" and float(kde.gamma.numpy()) == pytest.approx(3.0)
    assert kde.train_features.shape == (8, 16)


def test_a_density_on_jittered_copies_is_wider_along_the_lamp():
    """``embed_jittered``: seeded copies, [copies, N, D]; a density fitted on them too (as
    ``DensityConfig.augment_copies`` fits it) scores 20 %-darker normals closer to the clean
    ones than the paper's density on un-augmented images does."""
    subset, model = _washer_and_model(24, 16)
    size, files = (32, 32), subset.train_files
    copies = evaluate.embed_jittered(model, files, size, "pooled", 3, (0.3, 0.3, 0.0, 0.0),
                                     seed=1, batch_size=7)
    assert copies.shape == (3, 24, 512)
    np.testing.assert_array_equal(copies, evaluate.embed_jittered(
        model, files, size, "pooled", 3, (0.3, 0.3, 0.0, 0.0), seed=1, batch_size=7))
    clean = evaluate.embed(model, files, size, "pooled")
    assert np.abs(copies[0] - clean).max() > 1e-3
    stacked = np.concatenate([clean[:, None], copies.transpose(1, 0, 2)], axis=1)
    wide = evaluate.fit_features(stacked, DensityConfig(augment_copies=3))
    flat = evaluate.fit_features(stacked.reshape(-1, 512), DensityConfig())
    np.testing.assert_allclose(wide.mean.numpy(), flat.mean.numpy(), atol=1e-6)
    paper = evaluate.fit_features(clean, DensityConfig())
    images = np.concatenate([x.numpy() for x in data.eval_dataset(files, size, 8)])
    darker = evaluate.embed_images(model, np.round(images * 0.8 * 255) / 255, "pooled")

    def lift(density):  # the darker images' median score, in spreads of the clean scores
        own = density.score(tf.constant(clean)).numpy()
        dark = density.score(tf.constant(darker)).numpy()
        return (np.median(dark) - np.median(own)) / own.std()

    assert lift(wide) < lift(paper)


def test_density_config_checks_its_copies():
    with pytest.raises(ValueError, match="density_augment_copies must be >= 0"):
        DensityConfig(augment_copies=-1)
    with pytest.raises(ValueError, match="the copies would equal the images"):
        DensityConfig(augment_copies=2, augment_jitter=(0.0, 0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="hue <= 0.5"):
        DensityConfig(augment_jitter=(0.1, 0.1, 0.1, 0.7))
