"""Times the pieces of training on this machine and prints (and optionally writes) the figures.

    python -m launch.benchmark --image_size=64 --batch_size=16 --task=cutpaste --head_widths=512
    python -m launch.benchmark --image_size=256 --batch_size=96 --steps=3
    python -m launch.benchmark --flagfile=configs/patch_3way.flags --dense --steps=2

Figures: augmentation throughput (views/s, eager tf.data map and XLA-compiled), and training
seconds per step with constant in-memory tensors and with the real input pipeline on
``--data_dir``'s ``--category`` (their ratio shows whether the input starves the model).
With ``--dense``: seconds per image of dense patch scoring (patch embeddings, the Gaussian
density per location or shared, receptive-field upsampling) and the embedding part alone.
"""

from __future__ import annotations

import sys
import time

from absl import app, logging

from cutpaste_tf import data as data_lib
from cutpaste_tf import files, runner, train
from cutpaste_tf.ops import tasks
from launch import flags as flag_defs

FLAGS = flag_defs.FLAGS
flag_defs.flags.DEFINE_integer("steps", 10, "Timed steps per measurement (after one warm-up).")
flag_defs.flags.DEFINE_string("output", None, "Also write the figures as JSON here.")
flag_defs.flags.DEFINE_bool("dense", False, "Time dense patch scoring (localisation) instead of "
                            "training: seconds per image at --image_size with "
                            "--dense_patch_size, --stride and --per_location.")


def _seconds_per_call(fn, calls: int) -> float:
    fn()  # warm-up: tracing and compilation are not timed
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def main(argv: list[str]) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)
    import tensorflow as tf

    try:
        config = flag_defs.run_config()
        category = data_lib.index_mvtec(FLAGS.data_dir or "testdata",
                                        FLAGS.category[0] if FLAGS.category != ["all"] else "washer")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    tcfg = config.train
    size, batch, steps = tcfg.image_size, tcfg.batch_size, FLAGS.steps
    if FLAGS.dense:
        _print(_dense_figures(config, steps))
        return
    sources = tf.random.uniform([tcfg.sources_per_batch, *size, 3])
    figures = {"image_size": list(size), "batch_size": batch, "task": tcfg.task}

    eager = tf.function(lambda x, s: tasks.make_views(x, s, tcfg.task, tcfg.augment))
    xla = tf.function(lambda x, s: tasks.make_views(x, s, tcfg.task, tcfg.augment),
                      jit_compile=True)
    seed = tf.constant([0, 1], tf.int64)
    for name, fn in (("augment_views_per_s", eager), ("augment_xla_views_per_s", xla)):
        seconds = _seconds_per_call(lambda: fn(sources, seed)[0].numpy(), steps)
        figures[name] = round(batch / seconds, 1)

    model = runner.build_model(config)
    optimizer = train.make_optimizer(tcfg)
    optimizer.build(model.trainable_variables)
    step = train.make_train_step(model, optimizer, tcfg)
    views, labels = data_lib.augment_batch(tf.cast(sources * 255, tf.uint8), 0, tcfg.seed,
                                           tcfg.task, tcfg.augment)
    figures["train_s_per_step_constant"] = round(
        _seconds_per_call(lambda: float(step(views, labels)["loss"]), steps), 4)
    batches = iter(data_lib.train_dataset(category.train_files, size, tcfg.task, batch,
                                          tcfg.seed, tcfg.augment))
    figures["train_s_per_step_pipeline"] = round(
        _seconds_per_call(lambda: float(step(*next(batches))["loss"]), steps), 4)
    figures["pipeline_over_constant_throughput"] = round(
        figures["train_s_per_step_constant"] / figures["train_s_per_step_pipeline"], 3)
    figures["train_images_per_s_pipeline"] = round(batch / figures["train_s_per_step_pipeline"],
                                                   1)
    _print(figures)


def _print(figures: dict) -> None:
    for key, value in figures.items():
        print(f"{key:36s} {value}")
    if FLAGS.output:
        files.write_json(FLAGS.output, figures)


def _dense_figures(config, steps: int) -> dict:
    """Seconds per image of dense scoring, in calls of 4 images (untrained weights: the cost
    does not depend on them; the density is fitted on the same 4 images plus noise)."""
    import numpy as np
    import tensorflow as tf

    from cutpaste_tf.localization import dense, runner as loc_runner
    from cutpaste_tf.localization import density as dense_density
    from cutpaste_tf.localization.export import PatchScorer

    loc, size = config.localization, config.train.image_size
    per_location = bool(loc.per_location)  # auto counts as shared here; say true to time it
    model = loc_runner.build_patch_model(config)
    grid = dense.grid_size(size, loc.patch_size, loc.stride)
    embedder = dense.DenseEmbedder(model, size, loc.patch_size, loc.stride,
                                   config.density.feature, loc.chunk_size)
    count = 4  # images per call, as the runner batches them; figures are per image
    images = tf.random.uniform([count, *size, 3], seed=1)
    feats = embedder(images).numpy()
    feats = feats + np.random.default_rng(0).normal(scale=1e-2, size=feats.shape)
    density = dense_density.fit_dense_density(feats, per_location, config.density.normalize)
    scorer = PatchScorer(model, density, size, loc.patch_size, loc.stride, loc.upsample_sigma,
                         config.density.feature, loc.chunk_size)
    maps = tf.function(scorer.maps, input_signature=[tf.TensorSpec([None, *size, 3])])
    embed_s = _seconds_per_call(lambda: embedder(images).numpy(), steps) / count
    total_s = _seconds_per_call(lambda: maps(images)[1].numpy(), steps) / count
    return {"image_size": list(size), "patch_size": loc.patch_size, "stride": loc.stride,
            "grid": list(grid), "per_location": per_location,
            "dense_embed_s_per_image": round(embed_s, 3),
            "dense_score_s_per_image": round(total_s, 3),
            "patches_per_s": round(grid[0] * grid[1] / embed_s, 1)}


if __name__ == "__main__":
    app.run(main)
