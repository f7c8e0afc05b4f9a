r"""Scores a folder (or glob) of images with an exported model: CSV, JSON and heatmap overlays.

    python -m launch.predict --model=runs/quickstart --category=washer \
        --images=testdata/washer/test --output_dir=predictions/washer

``--model`` is an export version folder, a folder of versions (the newest is used) or a model
dir (``<model_dir>/export/<category>/<newest version>``; ``--category`` when it holds several).
Images are read and scored ``--predict_batch_size`` at a time through the model's
``serving_default`` signature (encoded bytes, decoded and preprocessed in the graph), so memory
stays bounded for any number of files. Writes ``predictions.csv`` (path, score, is_anomaly,
error) and ``predictions.json`` (the same plus a summary), and ``heatmaps/<relative path>.png``
overlays when the model has an anomaly map (``--noheatmaps`` to skip). ``--threshold`` overrides
the model's stored threshold for the decisions written here
(:mod:`cutpaste_tf.serving.predictions`). The scored images are compared with the training
images the model carries a reference of (image statistics, normal scores, the share above the
threshold): a drift beyond the stated bounds is printed as one warning line and recorded in
``predictions.json`` (:mod:`cutpaste_tf.evaluation.drift`).

Exit codes: 0 every image scored; 1 some images could not be read or decoded (each is named,
and every other image is still scored and written); 2 bad flags, no model or no images.
"""

from __future__ import annotations

import os
import sys

from cutpaste_tf.serving import predictions
from launch import errors
from launch import flags as flag_defs

FLAGS = flag_defs.FLAGS


def main(argv: list[str]) -> None:
    flag_defs.start(argv, "launch.predict")
    with errors.reported(ValueError, FileNotFoundError):
        if not FLAGS.model or not FLAGS.images:
            raise ValueError("--model and --images are required")
        if FLAGS.predict_batch_size <= 0:
            raise ValueError(f"--predict_batch_size must be positive, got "
                             f"{FLAGS.predict_batch_size}")
        category = None if FLAGS.category in (["all"], []) else FLAGS.category[0]
        output_dir = FLAGS.output_dir or "predictions"
        summary = predictions.predict_images(
            FLAGS.model, FLAGS.images, output_dir, category, FLAGS.predict_batch_size,
            FLAGS.heatmaps, FLAGS.threshold, FLAGS.progress)
    threshold = summary["threshold"]
    print(f"Scored {summary['scored']} of {summary['images']} images: {summary['anomalous']} "
          f"anomalous (threshold {threshold if threshold is not None else 'none stored'}).")
    print(f"Results: {os.path.join(output_dir, predictions.PREDICTIONS_CSV)} and "
          f"{predictions.PREDICTIONS_JSON}")
    if summary.get("drift_warning"):
        print(summary["drift_warning"], file=sys.stderr, flush=True)
    if summary["failed"]:
        print(f"{summary['failed']} image(s) could not be scored:", file=sys.stderr)
        for item in summary["failed_files"]:
            print(f"  {item['path']}: {item['error']}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    flag_defs.run(main)
