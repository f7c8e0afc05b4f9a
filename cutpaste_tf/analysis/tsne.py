"""Figure 3: a t-SNE map of a trained model's features for normal images, real anomalies, and
CutPaste and Scar views of normal training images.

The features are the ones the density models (``config.density.feature``, L2-normalised when
the density normalises them). Normal and anomalous images are the category's test images; the
CutPaste and Scar views are made from the normal training images by
:func:`cutpaste_tf.ops.tasks.make_views` without the pre-augmentation, so a view differs from
its training image only by the pasted patch. The plot needs matplotlib (``pip install -e .[viz]``).
:func:`tsne_run` draws it for one category of a trained run (``launch.tsne``).
"""

from __future__ import annotations

import os
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from cutpaste_tf import files, plots, rundir
from cutpaste_tf.config import AugmentConfig
from cutpaste_tf.evaluation import evaluate
from cutpaste_tf.ops import tasks
from cutpaste_tf.pipeline import inputs, trained

# The embedded sets, in label order, with the paper's colours (Fig. 3).
SETS: tuple[str, ...] = ("normal", "anomaly", "cutpaste", "scar")
LEGEND = {"normal": "normal", "anomaly": "anomaly", "cutpaste": "Patch (CutPaste)",
          "scar": "Scar (CutPaste-scar)"}
COLORS = {"normal": "tab:blue", "anomaly": "tab:red", "cutpaste": "tab:green", "scar": "gold"}


def features(model: keras.Model, images: np.ndarray, feature: str, normalize: bool,
             batch_size: int = 32) -> np.ndarray:
    """The model's ``feature`` output for preprocessed images [N, H, W, 3], L2-normalised as
    the density sees it when ``normalize``."""
    if len(images) == 0:
        return np.zeros([0, 0], np.float32)
    out = evaluate.embed_images(model, images, feature, batch_size)
    if normalize:
        out = tf.math.l2_normalize(out, axis=-1, epsilon=1e-12).numpy()
    return out


def augmented_views(train_images: np.ndarray, seed: int, augment: AugmentConfig,
                    batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(CutPaste views, Scar views) of normal training images [N, H, W, 3], one of each per
    image, seeded by ``seed`` and the batch index."""
    cut, scar = [], []
    for start in range(0, len(train_images), batch_size):
        batch = tf.constant(train_images[start:start + batch_size], tf.float32)
        views, _ = tasks.make_views(batch, tf.constant([seed, start], tf.int64), "3way",
                                    augment, pre=False)
        n = int(batch.shape[0])
        cut.append(views[n:2 * n].numpy())
        scar.append(views[2 * n:].numpy())
    return np.concatenate(cut), np.concatenate(scar)


def embedding_sets(model: keras.Model, normal: np.ndarray, anomalous: np.ndarray,
                   train_images: np.ndarray, feature: str, normalize: bool,
                   augment: AugmentConfig = AugmentConfig(), seed: int = 0,
                   batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Features of the four sets stacked [N, D] and their labels [N] (indices into SETS)."""
    cut, scar = augmented_views(train_images, seed, augment, batch_size)
    parts = [features(model, x, feature, normalize, batch_size)
             for x in (normal, anomalous, cut, scar)]
    labels = np.concatenate([np.full(len(p), i, np.int32) for i, p in enumerate(parts)])
    return np.concatenate([p for p in parts if len(p)]), labels


def tsne_2d(feats: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """sklearn's t-SNE to 2-D [N, 2]; perplexity clipped to (N - 1) / 3 for small sets."""
    from sklearn.manifold import TSNE

    n = len(feats)
    if n < 4:
        raise ValueError(f"t-SNE needs at least 4 images, got {n}")
    if perplexity <= 0:
        raise ValueError(f"perplexity must be positive, got {perplexity}")
    used = float(min(perplexity, max(1.0, (n - 1) / 3.0)))
    return TSNE(n_components=2, perplexity=used, init="pca", random_state=seed).fit_transform(
        np.asarray(feats, np.float64))


def plot_png(points: np.ndarray, labels: np.ndarray, title: str) -> bytes:
    """The scatter plot of Fig. 3 as PNG bytes."""
    plt = plots.pyplot("The t-SNE figure")
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for i, name in enumerate(SETS):
        keep = labels == i
        if keep.any():
            ax.scatter(points[keep, 0], points[keep, 1], s=14, c=COLORS[name],
                       label=f"{LEGEND[name]} ({int(keep.sum())})", alpha=0.8, edgecolors="none")
    ax.set(title=title, xticks=[], yticks=[])
    ax.legend(loc="best", fontsize="small")
    return plots.figure_png(fig, dpi=100)


def counts(labels: np.ndarray) -> dict[str, int]:
    """How many points each set has."""
    return {name: int((labels == i).sum()) for i, name in enumerate(SETS)}


def split_test(paths: Sequence[str], labels: Sequence[int]) -> tuple[list[str], list[str]]:
    """(normal, anomalous) test files."""
    normal = [p for p, y in zip(paths, labels) if y == 0]
    return normal, [p for p, y in zip(paths, labels) if y == 1]


def tsne_run(model_dir: str, spec: inputs.InputSpec, perplexity: float = 30.0,
             seed: int = 0) -> str:
    """Figure 3 for the one category ``spec`` names, from the run in ``model_dir``: writes
    ``<model_dir>/<category>/tsne.png`` and ``tsne.json`` (the points and their sets), prints
    what it drew, and returns the PNG's path. Bad settings raise before any model is loaded."""
    plots.pyplot("The t-SNE figure")  # fail early and clearly without matplotlib
    if not model_dir:
        raise ValueError("model_dir is required")
    if not spec.data_dir:
        raise ValueError("data_dir is required: the dataset the model was trained on")
    if len(spec.categories) != 1 or spec.all_categories:
        raise ValueError(f"category={','.join(spec.categories) or 'none'}: give exactly one "
                         "category")
    if perplexity <= 0:
        raise ValueError(f"tsne_perplexity must be positive, got {perplexity}")
    config = rundir.load_run_config(model_dir)
    name = spec.categories[0]
    model, _ = trained.load_trained(model_dir, name, config)
    (data,) = inputs.resolve_categories(spec)
    size, batch = config.train.image_size, config.eval_batch_size
    normal_files, anomalous_files = split_test(data.test_files, data.test_labels)
    feats, labels = embedding_sets(
        model, trained.load_images(normal_files, size, batch),
        trained.load_images(anomalous_files, size, batch),
        trained.load_images(data.train_files, size, batch), config.density.feature,
        config.density.normalize_features, config.train.augment, seed, batch)
    points = tsne_2d(feats, seed, perplexity)
    title = f"{name}: t-SNE of the {config.density.feature} features ({config.train.task} model)"
    out = os.path.join(model_dir, name)
    png = os.path.join(out, "tsne.png")
    files.write_bytes(png, plot_png(points, labels, title))
    files.write_json(os.path.join(out, "tsne.json"), {
        "sets": list(SETS), "labels": labels.tolist(), "points": points.tolist(),
        "counts": counts(labels), "seed": seed, "perplexity_asked": perplexity})
    listed = ", ".join(f"{k} {v}" for k, v in counts(labels).items())
    print(f"[{name}] t-SNE of {len(labels)} images ({listed}): {png}")
    return png
