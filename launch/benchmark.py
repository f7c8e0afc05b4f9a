r"""Measures the speed of every stage on this machine; prints the figures and writes them as JSON.

    python -m launch.benchmark --flagfile=configs/3way.flags --data_dir=testdata --steps=3
    python -m launch.benchmark --flagfile=configs/quickstart.flags --steps=20
    python -m launch.benchmark --flagfile=configs/3way.flags --sections=tasks --steps=5
    python -m launch.benchmark --flagfile=configs/patch_3way.flags --data_dir=testdata \
        --sections=dense --per_location=true --steps=1

Figures (all at ``--image_size`` with ``--batch_size`` views of ``--task``), by ``--sections``:

- ``augment``: augmentation throughput in views/s: through the real ``tf.data`` pipeline
  (decode once, cache, shuffle, augment, batch) on ``--data_dir``'s ``--category``; as one
  compiled graph (what the pipeline's map runs); and XLA-compiled (what
  ``--augment_on_device`` runs inside the train step);
- ``train``: training throughput in images/s (views per second) with constant in-memory
  tensors and with the real pipeline; their ratio says whether the input starves the model
  (1.0: it does not);
- ``serve``: SavedModel latency: p50 and p95 milliseconds for one image (float pixels in, and
  encoded bytes in) against the bare network's p50 (the Keras model and the density score as
  one in-process ``tf.function`` on the decoded image), their ratios, all timed in alternation
  on the same image (the first test image of ``--category`` at ``--image_size`` when the run
  indexes one, i.e. with ``--data_dir`` or the augment / train sections; else a synthetic one),
  and images/s for a batch of 32;
- ``tasks``: views/s of ``make_views`` alone for each of ``--bench_tasks`` (default: CutPaste
  and the baseline tasks) on ``--bench_sources`` random source images, as a compiled graph and
  XLA-compiled (rotation is left out at non-square sizes);
- ``dense``: seconds per image of dense patch scoring (patch embeddings, the Gaussian density per
  location or shared, receptive-field upsampling) at ``--dense_patch_size`` / ``--stride``, and
  the embedding part alone;

and always the hardware and software they were measured on.
"""

from __future__ import annotations

from cutpaste_tf import data as data_lib
from cutpaste_tf import devices, files
from cutpaste_tf.benchmark import speed
from cutpaste_tf.config import TASK_VIEWS
from cutpaste_tf.ops import tasks
from launch import configs, errors
from launch import flags as flag_defs

FLAGS = flag_defs.FLAGS
flag_defs.flags.DEFINE_integer("steps", 10, "Timed calls per measurement (after one warm-up).")
flag_defs.flags.DEFINE_string("output", "benchmark.json", "Where the figures go as JSON "
                              "('' for nowhere).")
flag_defs.flags.DEFINE_list("sections", ["augment", "train", "serve", "dense"],
                            "Which figures to measure: augment, train, serve, dense, tasks.")
flag_defs.flags.DEFINE_list("bench_tasks", ["cutpaste", "rotation", "cutout", "cutout_mean",
                                            "cutout_color", "scar_cutout", "confetti"],
                            "--sections=tasks: the proxy tasks whose views are timed.")
flag_defs.flags.DEFINE_integer("bench_sources", 32, "--sections=tasks: source images per call.")
SECTIONS = ("augment", "train", "serve", "dense", "tasks")
# Batches drawn before tf.data is timed: its autotuned parallelism takes a few batches to settle
# (at 256x256, 3-way, 2,518 views/s over 5 batches after one, 2,948 over 20).
WARMUP_BATCHES = 6


def augmentation(config, category, steps: int) -> dict:
    """Views per second of make_views as a graph and under XLA, and through tf.data as
    configured (``jit_augment``) and as a plain graph."""
    import tensorflow as tf
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


def task_views(config, steps: int, names: list[str], sources: int) -> dict:
    """Views per second of make_views for each task, graph and XLA, on random source images."""
    import tensorflow as tf
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


def main(argv: list[str]) -> None:
    flag_defs.start(argv, "launch.benchmark")
    with errors.reported(ValueError):
        config = configs.run_config()
        name = FLAGS.category[0] if FLAGS.category not in (["all"], []) else "washer"
        category = None  # real images are needed only to time the input pipeline
        if {"augment", "train"} & set(FLAGS.sections) or (
                "serve" in FLAGS.sections and FLAGS.data_dir):
            layout = FLAGS.dataset if FLAGS.data_dir and FLAGS.dataset in data_lib.LAYOUTS else (
                "mvtec")
            category = data_lib.index_layout(layout, FLAGS.data_dir or "testdata", name,
                                             FLAGS.category_kind)
        unknown = sorted(set(FLAGS.bench_tasks) - set(TASK_VIEWS))
        if unknown or FLAGS.bench_sources <= 0:
            raise ValueError(f"--bench_tasks must name tasks of {sorted(TASK_VIEWS)} (unknown: "
                             f"{unknown}) and --bench_sources must be positive")
        unknown = [name for name in FLAGS.sections if name not in SECTIONS]
        if unknown:
            raise ValueError(f"--sections: unknown section {unknown[0]!r}; choose from "
                             f"{', '.join(SECTIONS)}")
    tcfg = config.train
    serve_image = category.test_files[0] if category and category.test_files else None
    figures = {"image_size": list(tcfg.image_size), "batch_size": tcfg.batch_size,
               "task": tcfg.task, "precision": tcfg.precision, "jit_compile": tcfg.jit_compile,
               "category": category.name if category else None, "hardware": devices.hardware()}
    sections = {"augment": lambda: augmentation(config, category, FLAGS.steps),
                "train": lambda: speed.training(config, category, FLAGS.steps),
                "serve": lambda: speed.serving(config, FLAGS.steps, serve_image),
                "dense": lambda: _dense_figures(config, FLAGS.steps),
                "tasks": lambda: task_views(config, FLAGS.steps, FLAGS.bench_tasks,
                                            FLAGS.bench_sources)}
    for name in FLAGS.sections:
        figures.update(sections[name]())
    for key, value in figures.items():
        print(f"{key:32s} {value}")
    if FLAGS.output:
        files.write_json(FLAGS.output, figures)
        print(f"Written: {FLAGS.output}")


def _dense_figures(config, steps: int) -> dict:
    """Seconds per image of dense scoring, in calls of 4 images (untrained weights: the cost
    does not depend on them; the density is fitted on the same 4 images plus noise)."""
    import numpy as np
    import tensorflow as tf

    from cutpaste_tf.localization import dense
    from cutpaste_tf.localization import density as dense_density
    from cutpaste_tf.pipeline import build
    from cutpaste_tf.serving.patch_scorer import PatchScorer

    loc, size = config.localization, config.train.image_size
    per_location = bool(loc.per_location)  # auto counts as shared here; say true to time it
    model = build.build_patch_model(config)
    grid = dense.grid_size(size, loc.dense_patch_size, loc.stride)
    embedder = dense.DenseEmbedder(model, size, loc.dense_patch_size, loc.stride,
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


if __name__ == "__main__":
    flag_defs.run(main)
