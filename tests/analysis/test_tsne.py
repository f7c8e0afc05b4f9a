"""Tests for cutpaste_tf.analysis.tsne and launch.tsne (Figure 3): the embedded sets, the 2-D map and
the PNG, on the tests' tiny trained run (tests/conftest.py) and the testdata washer category."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from helpers import ROOT

from cutpaste_tf.analysis import tsne
from cutpaste_tf.config import AugmentConfig
from cutpaste_tf.data import index


def test_embedding_sets_have_the_right_sizes_labels_and_norms(tiny_run):
    model, _ = tiny_run.model_and_density
    rng = np.random.default_rng(0)
    normal, anomalous, train = (rng.uniform(size=(n, 32, 32, 3)).astype(np.float32)
                                for n in (5, 3, 4))
    feats, labels = tsne.embedding_sets(model, normal, anomalous, train, "pooled", True,
                                        AugmentConfig(), seed=1, batch_size=3)
    assert feats.shape == (16, 512) and labels.tolist() == [0] * 5 + [1] * 3 + [2] * 4 + [3] * 4
    assert np.allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
    assert tsne.counts(labels) == {"normal": 5, "anomaly": 3, "cutpaste": 4, "scar": 4}
    raw, _ = tsne.embedding_sets(model, normal, anomalous, train, "pooled", False, seed=1)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    # Features of the normal set are the model's own, in order.
    assert np.allclose(raw[:5], model(normal, training=False)["pooled"].numpy(), atol=1e-5)


def test_views_differ_from_their_image_only_in_a_patch():
    train = np.random.default_rng(1).uniform(size=(6, 32, 32, 3)).astype(np.float32)
    cut, scar = tsne.augmented_views(train, seed=3, augment=AugmentConfig(), batch_size=4)
    assert cut.shape == scar.shape == train.shape
    for views in (cut, scar):
        changed = np.any(views != train, axis=-1).mean(axis=(1, 2))
        assert np.all(changed > 0) and np.all(changed < 0.5)


def test_tsne_is_seeded_and_clips_perplexity_for_small_sets():
    feats = np.random.default_rng(2).normal(size=(10, 8))
    a = tsne.tsne_2d(feats, seed=0, perplexity=30.0)  # > n: clipped to (n - 1) / 3
    assert a.shape == (10, 2) and np.all(np.isfinite(a))
    assert np.allclose(a, tsne.tsne_2d(feats, seed=0, perplexity=30.0))
    with pytest.raises(ValueError, match="at least 4 images"):
        tsne.tsne_2d(feats[:3])
    png = tsne.plot_png(a, np.array([0, 0, 1, 1, 2, 2, 3, 3, 3, 0]), "t")
    assert tf.io.decode_png(png).shape[-1] in (3, 4)


def test_launcher_writes_the_png_and_the_points(tiny_run, tmp_path, run_launcher, capsys):
    from launch import tsne as launcher
    model_dir = tiny_run.copy(tmp_path)
    data = index.index_mvtec(str(ROOT / "testdata"), "washer")
    assert run_launcher(launcher, f"--model_dir={model_dir}", f"--data_dir={ROOT / 'testdata'}",
                        "--category=washer", "--tsne_perplexity=5", "--seed=0") == 0
    png = (model_dir / "washer" / "tsne.png").read_bytes()
    image = tf.io.decode_png(png)
    assert image.shape[0] > 100 and image.shape[1] > 100
    saved = json.loads((model_dir / "washer" / "tsne.json").read_text())
    n_train = len(data.train_files)
    assert saved["counts"] == {"normal": 12, "anomaly": 24, "cutpaste": n_train, "scar": n_train}
    assert len(saved["points"]) == len(saved["labels"]) == 36 + 2 * n_train
    assert "tsne.png" in capsys.readouterr().out
    assert run_launcher(launcher, f"--model_dir={model_dir}", "--data_dir=testdata",
                        "--category=all") == 2
    assert "--category=all: give exactly one category" in capsys.readouterr().err
