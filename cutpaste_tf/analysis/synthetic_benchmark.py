"""Detection of unseen, synthetic anomalies (Sec. 5.3, Table 6).

A trained model and its fitted density score the category's normal test images and the same
images with a synthetic anomaly pasted on (:mod:`cutpaste_tf.ops.synthetic`); the AUROC of
normal against altered is reported per kind (shape x fill). Every kind uses the same seeds, so
one image gets its shape at the same place, size and angle in every kind: kinds differ only in
shape and fill. Natural fills come from source images the caller gives (by default the
training images of the dataset's other categories). :func:`evaluate_run` does it for a trained
run's categories (``launch.synthetic``).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Mapping, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from cutpaste_tf import density as density_lib
from cutpaste_tf import files, rundir
from cutpaste_tf.config import RunConfig
from cutpaste_tf.data import CategoryData, index
from cutpaste_tf.evaluation import evaluate, metrics
from cutpaste_tf.ops import synthetic
from cutpaste_tf.ops.synthetic import SYNTHETIC_FILLS, SYNTHETIC_SHAPES, SyntheticConfig
from cutpaste_tf.pipeline import inputs, trained
from cutpaste_tf.reporting import paper

# "<shape>_<fill>", colour fills first (Table 6's column order, plus natural-filled digits).
KINDS: tuple[str, ...] = tuple(f"{s}_{f}" for f in SYNTHETIC_FILLS for s in SYNTHETIC_SHAPES)
MAX_SOURCES = 64  # natural-fill source images kept in memory (spread over those given)
# The normal images altered (``synthetic_on``) -> (results file, table file, what they are).
OUTPUTS = {"test": ("synthetic.json", "synthetic.md", "normal test images"),
           "heldout": ("synthetic_heldout.json", "synthetic_heldout.md",
                       "held-out training images")}
EXAMPLES = "synthetic_examples.png"


def split_kind(kind: str) -> tuple[str, str]:
    """``"heart_natural"`` -> ``("heart", "natural")``; ValueError for an unknown kind."""
    if kind not in KINDS:
        raise ValueError(f"unknown synthetic kind {kind!r}; choose from {', '.join(KINDS)}")
    shape, fill = kind.split("_")
    return shape, fill


def spread(paths: Sequence[str], count: int) -> list[str]:
    """At most ``count`` of ``paths``, evenly spaced (so every category contributes)."""
    paths = list(paths)
    if len(paths) <= count:
        return paths
    return [paths[i] for i in np.linspace(0, len(paths) - 1, count).round().astype(int)]


def make_anomalies(images: np.ndarray, kind: str, seed: int, digits: Optional[np.ndarray],
                   sources: Optional[np.ndarray], config: SyntheticConfig = SyntheticConfig(),
                   batch_size: int = 32) -> np.ndarray:
    """``images`` [N, H, W, 3] in [0, 1] with one anomaly of ``kind`` each, seeded by ``seed``
    and the batch index (not by the kind). Runs eagerly: every op works on whole batches, so
    tracing (about a second per kind) would cost more than it saves next to the model."""
    shape, fill = split_kind(kind)
    digit_t = None if digits is None else tf.constant(digits, tf.float32)
    source_t = None if sources is None else tf.constant(sources, tf.float32)
    out = []
    for start in range(0, len(images), batch_size):
        batch = tf.constant(images[start:start + batch_size], tf.float32)
        out.append(synthetic.synthesize(batch, tf.constant([seed, start], tf.int64), shape, fill,
                                        digit_t, source_t, config).numpy())
    return np.concatenate(out) if out else images[:0]


def score(model: keras.Model, estimator: density_lib.Density, images: np.ndarray, feature: str,
          batch_size: int = 32) -> np.ndarray:
    """Anomaly scores of preprocessed images [N, H, W, 3] (higher = more anomalous)."""
    features = evaluate.embed_images(model, images, feature, batch_size)
    if not np.all(np.isfinite(features)):
        raise evaluate.EvaluationError("synthetic benchmark: NaN or Inf features; the model's "
                                       "weights are broken")
    return estimator.score(tf.constant(features, tf.float32)).numpy()


def synthetic_auroc(model: keras.Model, estimator: density_lib.Density, normal: np.ndarray,
                    feature: str, sources: Optional[np.ndarray] = None,
                    digits: Optional[np.ndarray] = None, kinds: Sequence[str] = KINDS,
                    seed: int = 0, copies: int = 1, config: SyntheticConfig = SyntheticConfig(),
                    batch_size: int = 32) -> dict[str, float]:
    """AUROC per kind of ``normal`` images [N, H, W, 3] against ``copies`` altered versions of
    each. ``sources`` (same size as ``normal``) are needed for natural fills, ``digits``
    (default: :func:`synthetic.digit_templates`) for digits."""
    if len(normal) < 1:
        raise ValueError("the synthetic benchmark needs at least one normal image")
    if copies < 1:
        raise ValueError(f"copies must be at least 1, got {copies}")
    fills = {split_kind(k)[1] for k in kinds}
    if "natural" in fills and (sources is None or len(sources) == 0):
        raise ValueError("natural fills need source images; none were given")
    if any(split_kind(k)[0] == "digit" for k in kinds) and digits is None:
        digits = synthetic.digit_templates(config.digit_size)
    normal_scores = score(model, estimator, normal, feature, batch_size)
    result = {}
    for kind in kinds:
        altered = np.concatenate([
            score(model, estimator, make_anomalies(normal, kind, seed * 1000 + c, digits,
                                                   sources, config, batch_size),
                  feature, batch_size) for c in range(copies)])
        labels = np.r_[np.zeros(len(normal_scores)), np.ones(len(altered))]
        result[kind] = metrics.auroc(labels, np.r_[normal_scores, altered])
    return result


def averages(aurocs: dict[str, float]) -> dict[str, float]:
    """Mean AUROC over Table 6's seven kinds (the paper's "Avg") and over all kinds given."""
    table6 = [aurocs[k] for k in paper.TABLE6_KINDS if k in aurocs]
    out = {"all": float(np.mean(list(aurocs.values())))}
    if len(table6) == len(paper.TABLE6_KINDS):
        out["table6"] = float(np.mean(table6))
    return out


def table6_markdown(per_category: Mapping[str, Mapping[str, float]], title: str) -> str:
    """Our AUROC (%) per category and synthetic kind, their mean over Table 6's kinds, and the
    paper's Table 6 rows (``per_category``: category -> kind -> AUROC fraction)."""
    kinds = [k for k in KINDS if any(k in r for r in per_category.values())]
    head = "| | " + " | ".join(kinds) + " | Avg (Table 6 kinds) |"
    lines = [f"### {title}", "", head, "|---" * (len(kinds) + 2) + "|"]

    def row(name: str, values: Mapping[str, float], avg: str) -> str:
        cells = [f"{100 * values[k]:.1f}" if k in values else "–" for k in kinds]
        return f"| {name} | " + " | ".join(cells) + f" | {avg} |"

    for category, values in per_category.items():
        avg = averages(values).get("table6")
        lines.append(row(category, values, "–" if avg is None else f"{100 * avg:.1f}"))
    for method, values in paper.TABLE6.items():
        lines.append(row(f"paper, {method} (MVTec AD)", {k: v / 100 for k, v in values.items()},
                         f"{values['average']:.1f}"))
    return "\n".join(lines)


def example_grid(normal: np.ndarray, sources: Optional[np.ndarray],
                 digits: Optional[np.ndarray], kinds: Sequence[str] = KINDS, seed: int = 0,
                 count: int = 4, config: SyntheticConfig = SyntheticConfig()) -> bytes:
    """A PNG: one row per kind (the first ``count`` normal images altered), normal row on top."""
    images = normal[:count]
    rows = [images] + [make_anomalies(images, k, seed * 1000, digits, sources, config)
                       for k in kinds]
    pad = lambda x: np.pad(x, [(0, 0), (2, 2), (2, 2), (0, 0)], constant_values=1.0)  # noqa: E731
    grid = np.concatenate([np.concatenate(list(pad(r)), axis=1) for r in rows], axis=0)
    return tf.io.encode_png(tf.cast(tf.round(grid * 255.0), tf.uint8)).numpy()


def default_sources(data_dir: str, category: str, categories: Sequence[str],
                    train_files) -> list[str]:
    """Natural-fill sources: the training images of the dataset's other categories.

    ``train_files(name)`` lists a category's training images. ValueError when there is no
    other category.
    """
    others = [c for c in categories if c != category]
    if not others:
        raise ValueError(f"{data_dir} has no category besides {category!r} to take natural-image "
                         "patches from; pass natural_dir=<folder of images>")
    per = max(1, MAX_SOURCES // len(others))
    paths = []
    for name in others:
        paths += spread(train_files(name), per)
    return spread(paths, MAX_SOURCES)


def plan(model_dir: str, spec: inputs.InputSpec, natural_dir: Optional[str] = None,
         copies: int = 1, on: str = "test"
         ) -> tuple[RunConfig, list[tuple[CategoryData, list[str], list[str]]]]:
    """Checks every setting and input of :func:`evaluate_run` and returns (config, [(category
    data, natural source files, normal files)]) before any model is loaded; the normal files
    are the ones ``on`` names (``synthetic_on``)."""
    if not model_dir:
        raise ValueError("model_dir is required")
    if not spec.data_dir:
        raise ValueError("data_dir is required: the dataset the model was trained on")
    if copies < 1:
        raise ValueError(f"synthetic_copies must be at least 1, got {copies}")
    if on not in OUTPUTS:
        raise ValueError(f"synthetic_on={on} must be one of {', '.join(OUTPUTS)}")
    config = rundir.load_run_config(model_dir)
    names = rundir.requested_categories(model_dir, spec.categories)
    natural = None
    if natural_dir:
        natural = index.list_images(natural_dir)
        if not natural:
            raise ValueError(f"natural_dir={natural_dir} holds no images (PNG, JPEG or BMP "
                             "directly inside it)")
    every = None
    work = []
    for name in names:
        (data,) = inputs.resolve_categories(dataclasses.replace(spec, categories=(name,)))
        normal = normal_files(model_dir, data, on)  # now: a missing hold-out fails early
        if natural is None and every is None:
            every = {d.name: d for d in inputs.resolve_categories(
                dataclasses.replace(spec, categories=("all",)))}
        sources = natural or default_sources(spec.data_dir, name, list(every),
                                             lambda n: list(every[n].train_files))
        work.append((data, spread(sources, MAX_SOURCES), normal))
    return config, work


def normal_files(model_dir: str, data: CategoryData, on: str) -> list[str]:
    """The normal images ``on`` names: the test set's, or the run's held-out training images."""
    if on == "heldout":
        return rundir.held_out_files(rundir.category_dir(model_dir, data.name))
    return [p for p, y in zip(data.test_files, data.test_labels) if y == 0]


def evaluate_run(model_dir: str, spec: inputs.InputSpec, natural_dir: Optional[str] = None,
                 copies: int = 1, on: str = "test", seed: int = 0,
                 examples: bool = True) -> tuple[str, str]:
    """Scores each trained category of ``model_dir`` (``spec.categories``, all by default) on
    its normal images (``on``) against the same images with each synthetic kind pasted on,
    ``copies`` altered versions per kind; adds the AUROCs to the run's ``synthetic.json``
    (``synthetic_heldout.json`` for ``on="heldout"``) and writes the Table 6 Markdown beside
    it, and with ``examples`` a PNG of examples per category. Returns (Markdown, JSON path)."""
    config, work = plan(model_dir, spec, natural_dir, copies, on)
    digits = synthetic.digit_templates(SyntheticConfig().digit_size)
    results_file, table_file, images = OUTPUTS[on]
    path = os.path.join(model_dir, results_file)
    results = rundir.read_category_results(path)
    size, batch = config.train.image_size, config.eval_batch_size
    for data, source_files, normal_paths in work:
        model, estimator = trained.load_trained(model_dir, data.name, config)
        normal = trained.load_images(normal_paths, size, batch)
        sources = trained.load_images(source_files, size, batch)
        print(f"[{data.name}] {len(normal)} {images} x {copies} "
              f"cop{'y' if copies == 1 else 'ies'} per kind; natural patches from "
              f"{len(sources)} images")
        aurocs = synthetic_auroc(model, estimator, normal, config.density.feature, sources,
                                 digits, seed=seed, copies=copies, batch_size=batch)
        results[data.name] = {"auroc": aurocs, "average": averages(aurocs),
                              "num_normal": len(normal), "copies": copies, "seed": seed,
                              "natural_sources": source_files, "images": on}
        if examples:
            grid = example_grid(normal, sources, digits, seed=seed)
            files.write_bytes(os.path.join(model_dir, data.name, EXAMPLES), grid)
    table = table6_markdown({n: r["auroc"] for n, r in sorted(results.items())},
                            f"Synthetic anomalies on {images}, AUROC (%), "
                            f"{config.train.task} model")
    files.write_json(path, {"task": config.train.task, "kinds": list(KINDS), "images": on,
                            "categories": results})
    files.write_text(os.path.join(model_dir, table_file), table + "\n")
    return table, path
