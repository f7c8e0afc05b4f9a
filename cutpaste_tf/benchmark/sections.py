"""The benchmark's sections (``launch.benchmark --sections=``): each measures one stage on this
machine and returns its figures; :func:`measure` runs the ones asked for and writes them, with
the hardware they were measured on, as JSON.

- ``augment``: augmentation in views/s: through the real ``tf.data`` pipeline (decode once,
  cache, shuffle, augment, batch), as one compiled graph (what the pipeline's map runs), and
  XLA-compiled (what ``augment_on_device`` runs inside the train step);
- ``train``: training views/s with in-memory tensors and with the real pipeline
  (:func:`cutpaste_tf.benchmark.speed.training`);
- ``serve``: SavedModel latency against the bare network
  (:func:`cutpaste_tf.benchmark.speed.serving`);
- ``tasks``: views/s of ``make_views`` alone for each proxy task, graph and XLA;
- ``dense``: seconds per image of dense patch scoring, and of the embedding part alone.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from cutpaste_tf import data as data_lib
from cutpaste_tf import devices, files
from cutpaste_tf.benchmark import speed
from cutpaste_tf.config import TASK_VIEWS, RunConfig
from cutpaste_tf.localization import dense as dense_lib
from cutpaste_tf.localization import density as dense_density
from cutpaste_tf.ops import tasks
from cutpaste_tf.pipeline import build, inputs
from cutpaste_tf.serving.patch_scorer import PatchScorer

SECTIONS = ("augment", "train", "serve", "dense", "tasks")
# The proxy tasks the ``tasks`` section times by default: CutPaste and the baselines.
BENCH_TASKS = ("cutpaste", "rotation", "cutout", "cutout_mean", "cutout_color", "scar_cutout",
               "confetti")
# Batches drawn before tf.data is timed: its autotuned parallelism takes a few batches to settle
# (at 256x256, 3-way, 2,518 views/s over 5 batches after one, 2,948 over 20).
WARMUP_BATCHES = 6


def augmentation(config: RunConfig, category: data_lib.CategoryData, steps: int) -> dict:
    """Views per second of make_views as a graph and under XLA, and through tf.data as
    configured (``jit_augment``) and as a plain graph."""
    tcfg = config.train
    batch = tcfg.batch_size
    sources = tf.random.uniform([tcfg.sources_per_batch, *tcfg.image_size, 3])
    seed = tf.constant([0, 1], tf.int64)
    out = {}
    for name, jit in (("augment_graph_views_per_s", False), ("augment_xla_views_per_s", True)):
        fn = tf.function(lambda x, s: tasks.make_views(x, s, tcfg.task, tcfg.augment),
                         jit_compile=jit)
        out[name] = round(batch / speed.seconds_per_call(
            lambda: speed.finished(fn(sources, seed)), steps), 1)
    for key, jit in (("augment_tfdata_views_per_s", tcfg.jit_augment),
                     ("augment_tfdata_graph_views_per_s", False)):
        batches = iter(data_lib.train_dataset(category.train_files, tcfg.image_size, tcfg.task,
                                              batch, tcfg.seed, tcfg.augment, jit_augment=jit))
        for _ in range(WARMUP_BATCHES):  # fill the cache, compile, let tf.data tune itself
            next(batches)
        out[key] = round(batch / speed.seconds_per_call(lambda: speed.finished(next(batches)),
                                                        steps), 1)
    out["augment_tfdata_jit"] = tcfg.jit_augment
    return out


def task_views(config: RunConfig, steps: int, names: Sequence[str], sources: int) -> dict:
    """Views per second of make_views for each task, graph and XLA, on random source images."""
    height, width = config.train.image_size
    images = tf.random.uniform([sources, height, width, 3], seed=1)
    seed = tf.constant([0, 1], tf.int64)
    out = {"bench_sources": sources}
    for name in names:
        if name == "rotation" and height != width:
            continue
        views = sources * len(TASK_VIEWS[name])
        for mode, jit in (("graph", False), ("xla", True)):
            fn = tf.function(lambda x, s, t=name: tasks.make_views(x, s, t, config.train.augment),
                             jit_compile=jit)
            seconds = speed.seconds_per_call(lambda: speed.finished(fn(images, seed)), steps)
            out[f"views_per_s_{name}_{mode}"] = round(views / seconds, 1)
    return out


def dense(config: RunConfig, steps: int) -> dict:
    """Seconds per image of dense scoring, in calls of 4 images (untrained weights: the cost
    does not depend on them; the density is fitted on the same 4 images plus noise)."""
    loc, size = config.localization, config.train.image_size
    per_location = bool(loc.per_location)  # auto counts as shared here; say true to time it
    model = build.build_patch_model(config)
    grid = dense_lib.grid_size(size, loc.dense_patch_size, loc.stride)
    embedder = dense_lib.DenseEmbedder(model, size, loc.dense_patch_size, loc.stride,
                                       config.density.feature, loc.dense_chunk)
    count = 4  # images per call, as the runner batches them; figures are per image
    images = tf.random.uniform([count, *size, 3], seed=1)
    feats = embedder(images).numpy()
    feats = feats + np.random.default_rng(0).normal(scale=1e-2, size=feats.shape)
    density = dense_density.fit_dense_density(feats, per_location,
                                              config.density.normalize_features)
    scorer = PatchScorer(model, density, size, loc.dense_patch_size, loc.stride,
                         loc.sigma_pixels, config.density.feature, loc.dense_chunk)
    maps = tf.function(scorer.maps, input_signature=[tf.TensorSpec([None, *size, 3])])
    embed_s = speed.seconds_per_call(lambda: embedder(images).numpy(), steps) / count
    total_s = speed.seconds_per_call(lambda: maps(images)[1].numpy(), steps) / count
    return {"dense_patch_size": loc.dense_patch_size, "stride": loc.stride,
            "grid": list(grid), "per_location": per_location,
            "dense_embed_s_per_image": round(embed_s, 3),
            "dense_score_s_per_image": round(total_s, 3),
            "patches_per_s": round(grid[0] * grid[1] / embed_s, 1)}


def measure(config: RunConfig, spec: inputs.InputSpec, sections: Sequence[str], steps: int,
            bench_tasks: Sequence[str] = BENCH_TASKS, bench_sources: int = 32,
            output: Optional[str] = None) -> dict:
    """The figures of ``sections`` (in that order) at ``config``'s size, batch and task, with
    the settings and the hardware they were measured on; written to ``output`` as JSON when
    given. Real images (:func:`cutpaste_tf.pipeline.inputs.measured_category`) are read only
    where a section times the input pipeline, or serves one of ``spec``'s test images. Bad
    sections or tasks raise ValueError before anything is measured."""
    unknown = sorted(set(bench_tasks) - set(TASK_VIEWS))
    if unknown or bench_sources <= 0:
        raise ValueError(f"bench_tasks must name tasks of {sorted(TASK_VIEWS)} (unknown: "
                         f"{unknown}) and bench_sources must be positive")
    unknown = [name for name in sections if name not in SECTIONS]
    if unknown:
        raise ValueError(f"sections: unknown section {unknown[0]!r}; choose from "
                         f"{', '.join(SECTIONS)}")
    category = None  # real images are needed only to time the input pipeline
    if {"augment", "train"} & set(sections) or ("serve" in sections and spec.data_dir):
        category = inputs.measured_category(spec)
    tcfg = config.train
    serve_image = category.test_files[0] if category and category.test_files else None
    figures = {"image_size": list(tcfg.image_size), "batch_size": tcfg.batch_size,
               "task": tcfg.task, "precision": tcfg.precision, "jit_compile": tcfg.jit_compile,
               "category": category.name if category else None, "hardware": devices.hardware()}
    run = {"augment": lambda: augmentation(config, category, steps),
           "train": lambda: speed.training(config, category, steps),
           "serve": lambda: speed.serving(config, steps, serve_image),
           "dense": lambda: dense(config, steps),
           "tasks": lambda: task_views(config, steps, bench_tasks, bench_sources)}
    for name in sections:
        figures.update(run[name]())
    if output:
        files.write_json(output, figures)
    return figures
