"""Speed measurements shared by ``launch.benchmark`` and the accelerator check.

- :func:`training`: views per second of the train step, with constant tensors and with the real
  input pipeline, in whatever ``precision`` / ``jit_compile`` / ``augment_on_device`` the config
  says;
- :func:`serving`: the exported SavedModel's latency for one image (encoded bytes in, and float
  pixels in) against the bare network (the same model and density score as one in-process
  ``tf.function``, on the already decoded image), timed in alternation so that a loaded machine
  slows both alike; and its throughput for a batch of 32.

Untrained weights throughout: the cost does not depend on them.
"""

from __future__ import annotations

import tempfile
import time
from typing import Callable, Mapping, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from cutpaste_tf import density as density_lib
from cutpaste_tf.config import RunConfig
from cutpaste_tf.data import CategoryData, decode, preprocess
from cutpaste_tf.data.pipeline import resize_uint8
from cutpaste_tf.pipeline import build
from cutpaste_tf.serving import savedmodel
from cutpaste_tf.training import step as step_lib


def finished(_outputs: object = None) -> None:
    """Waits until every device has finished its queued work (``_outputs`` are the call's
    results, kept alive until then), without copying them to the host: a ``.numpy()`` of a
    96-view 256x256 batch copies 75 MB, a third of the time the augmentation itself takes."""
    tf.test.experimental.sync_devices()


def seconds_per_call(fn: Callable[[], object], calls: int) -> float:
    """Mean seconds of ``fn()`` over ``calls`` calls, after one untimed warm-up call (tracing
    and compilation)."""
    fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def interleaved_seconds(fns: Mapping[str, Callable[[], object]], rounds: int
                        ) -> dict[str, np.ndarray]:
    """Seconds of each call of each function, called in turn once per round (after two
    untimed warm-up calls each). Alternating spreads a slow spell of a loaded machine over all
    of them, so their ratio holds when their absolute times do not."""
    for fn in fns.values():
        fn()
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: np.asarray(values) for name, values in times.items()}


def training(config: RunConfig, category: CategoryData, steps: int) -> dict:
    """Images (views) per second of the train step with constant tensors and with the pipeline.

    With ``augment_on_device`` the constant batch is uint8 source images that the step
    augments, so its figure includes the augmentation; without, it does not.
    """
    tcfg = config.train
    model = build.build_model(config, tcfg.precision)
    optimizer = step_lib.make_optimizer(tcfg)
    optimizer.build(model.trainable_variables)
    step = step_lib.make_train_step(model, optimizer, tcfg)
    # One batch from a pipeline that is then dropped, so that no prefetching shares the CPU
    # while the constant batch is timed; then a fresh pipeline for the second figure.
    strategy = tf.distribute.get_strategy()
    constant = next(build.training_batches(category, config, strategy))
    seconds_constant = seconds_per_call(lambda: float(step(*constant)["loss"]), steps)
    batches = build.training_batches(category, config, strategy)
    seconds_pipeline = seconds_per_call(lambda: float(step(*next(batches))["loss"]), steps)
    return {
        "train_images_per_s_constant": round(tcfg.batch_size / seconds_constant, 1),
        "train_images_per_s_pipeline": round(tcfg.batch_size / seconds_pipeline, 1),
        "pipeline_over_constant": round(seconds_constant / seconds_pipeline, 3),
    }


def serving_image(image_size: Sequence[int], path: Optional[str] = None) -> tf.Tensor:
    """PNG bytes of one image at ``image_size``: the file at ``path`` resized as evaluation
    resizes it, or (no path) a fixed smooth pattern with some noise."""
    if path:
        pixels = resize_uint8(decode(tf.io.read_file(path)), image_size)
    else:
        rng = np.random.default_rng(0)
        coarse = rng.uniform(0, 255, size=(1, 8, 8, 3)).astype(np.float32)
        smooth = tf.image.resize(coarse, list(image_size), method="bicubic")[0]
        noise = rng.normal(scale=4.0, size=(*image_size, 3)).astype(np.float32)
        pixels = tf.cast(tf.clip_by_value(tf.round(smooth + noise), 0, 255), tf.uint8)
    return tf.io.encode_png(pixels)


def serving(config: RunConfig, steps: int, image_path: Optional[str] = None) -> dict:
    """Latency of the exported SavedModel for one image against the bare network, and the
    SavedModel's throughput for a batch of 32.

    Every round calls, in turn, on the same image at the model's size (:func:`serving_image`):
    the ``serving_default`` signature (encoded bytes in: decode, resize, model, density score),
    the ``serve_float`` signature (the decoded pixels in: resize, model, score) and the bare
    network (the decoded, preprocessed pixels through the Keras model and the density score
    in one ``tf.function``, as evaluation runs it). At least 20 rounds.
    """
    size = tuple(config.train.image_size)
    feature = config.density.feature
    model = build.build_model(config)
    encoded = serving_image(size, image_path)
    image = preprocess(decode(encoded), size)[None]  # what the bare network gets
    density, bare = _bare_network(model, image, feature)
    scorer = savedmodel.AnomalyScorer(model, density, size, feature)
    with tempfile.TemporaryDirectory() as tmp:
        loaded = savedmodel.load(savedmodel.export(scorer, tmp, "bench"))
        by_bytes = loaded.signatures["serving_default"]
        by_float = loaded.signatures["serve_float"]
        times = interleaved_seconds({
            "bytes": lambda: by_bytes(image_bytes=encoded[None])["score"].numpy(),
            "float": lambda: by_float(images=image)["score"].numpy(),
            "bare": lambda: bare(image).numpy(),
        }, max(steps, 20))
        served = float(by_bytes(image_bytes=encoded[None])["score"][0])
        many = tf.random.uniform([32, *size, 3])
        seconds = seconds_per_call(lambda: by_float(images=many)["score"].numpy(), steps)
    return {
        **_latencies(times),
        "serving_score_abs_diff": float(abs(served - float(bare(image)[0]))),
        "serving_rounds": int(len(times["bare"])),
        "serving_image": image_path or "synthetic",
        "serving_batch32_images_per_s": round(32 / seconds, 1),
    }


def _bare_network(model: keras.Model, image: tf.Tensor, feature: str
                  ) -> tuple[density_lib.Density, Callable[[tf.Tensor], tf.Tensor]]:
    """A Gaussian density on random features of the model's size (the cost does not depend on
    its fit), and the bare network: model and density score in one ``tf.function``."""
    dim = int(model(image, training=False)[feature].shape[-1])
    features = np.random.default_rng(0).normal(size=(64, dim)).astype(np.float32)
    density = density_lib.fit_density("gde", features)
    bare = tf.function(lambda x: density.score(
        tf.cast(model(x, training=False)[feature], tf.float32)))
    return density, bare


def _latencies(times: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Median and 95th-percentile latencies (ms) of the timed calls, and the serving paths'
    medians over the bare network's."""
    p50 = {name: float(np.percentile(t, 50)) for name, t in times.items()}
    return {
        "serving_latency_ms_p50": round(1000 * p50["float"], 2),
        "serving_latency_ms_p95": round(1000 * float(np.percentile(times["float"], 95)), 2),
        "serving_bytes_latency_ms_p50": round(1000 * p50["bytes"], 2),
        "serving_bytes_latency_ms_p95": round(1000 * float(np.percentile(times["bytes"], 95)),
                                              2),
        "bare_latency_ms_p50": round(1000 * p50["bare"], 2),
        "serving_bytes_over_bare": round(p50["bytes"] / p50["bare"], 3),
        "serving_float_over_bare": round(p50["float"] / p50["bare"], 3),
    }
