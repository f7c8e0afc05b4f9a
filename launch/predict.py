"""Scores a folder (or glob) of images with an exported model: CSV, JSON and heatmap overlays.

    python -m launch.predict --model=runs/quickstart --category=washer \
        --images=testdata/washer/test --output_dir=predictions/washer

``--model`` is an export version folder, a folder of versions (the newest is used) or a model
dir (``<model_dir>/export/<category>/<newest version>``; ``--category`` when it holds several).
Images are read and scored ``--predict_batch_size`` at a time through the model's
``serving_default`` signature (encoded bytes, decoded and preprocessed in the graph), so memory
stays bounded for any number of files. Writes ``predictions.csv`` (path, score, is_anomaly,
error) and ``predictions.json`` (the same plus a summary), and ``heatmaps/<relative path>.png``
overlays when the model has an anomaly map (``--noheatmaps`` to skip). ``--threshold`` overrides
the model's stored threshold for the decisions written here.

Exit codes: 0 every image scored; 1 some images could not be read or decoded (each is named,
and every other image is still scored and written); 2 bad flags, no model or no images.
"""

from __future__ import annotations

import csv
import math
import os
import re
import sys
import uuid
from typing import Iterator, Optional, Sequence

import cv2
import keras
import numpy as np
import tensorflow as tf
from absl import app

from cutpaste_tf import files
from cutpaste_tf.data.index import IMAGE_EXTENSIONS
from cutpaste_tf.serving import savedmodel
from launch import flags as flag_defs

FLAGS = flag_defs.FLAGS
CSV_FIELDS = ["path", "score", "is_anomaly", "error"]


def find_images(spec: str) -> tuple[list[str], str]:
    """(sorted image paths, the folder heatmap paths are relative to) for a folder or glob."""
    if tf.io.gfile.isdir(spec):
        found = []
        for folder, _, names in tf.io.gfile.walk(spec):
            found += [os.path.join(folder, n) for n in names
                      if n.lower().endswith(IMAGE_EXTENSIONS)]
        return sorted(found), spec
    found = sorted(p for p in tf.io.gfile.glob(spec) if not tf.io.gfile.isdir(p))
    root = os.path.commonpath([os.path.dirname(p) for p in found]) if found else ""
    return found, root


def batches(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _short(error: Exception) -> str:
    """The first line of an error's message, without TF's node and op decorations."""
    text = (getattr(error, "message", None) or str(error)).strip()
    text = text.splitlines()[0] if text else type(error).__name__
    text = re.sub(r"^\{\{[^}]*\}\}\s*|\s*\[Op:\w+\]$", "", text)
    return text[:300]


def _decode_error(contents: bytes, error: Exception) -> str:
    """The decoder's own message for a file the model could not decode (graph errors are long)."""
    try:
        tf.io.decode_image(contents, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
        return _short(e)
    return _short(error)


def score_batch(signature, paths: Sequence[str]) -> list[tuple[str, Optional[dict], str]]:
    """(path, outputs for that image or None, error) per path; one bad file fails only itself."""
    read = []
    results: dict[str, tuple[Optional[dict], str]] = {}
    for path in paths:
        try:
            with tf.io.gfile.GFile(path, "rb") as f:
                read.append((path, f.read()))
        except (OSError, tf.errors.OpError) as e:
            results[path] = (None, f"cannot read: {_short(e)}")

    def run(items):
        out = signature(image_bytes=tf.constant([c for _, c in items], tf.string))
        out = {k: v.numpy() for k, v in out.items()}
        for i, (path, contents) in enumerate(items):
            results[path] = ({k: v[i] for k, v in out.items()} | {"_bytes": contents}, "")

    if read:
        try:
            run(read)
        except (tf.errors.InvalidArgumentError, tf.errors.UnknownError):
            for item in read:  # find the file(s) that failed; the rest score normally
                try:
                    run([item])
                except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
                    results[item[0]] = (None, f"cannot decode: {_decode_error(item[1], e)}")
    return [(p, *results[p]) for p in paths]


def overlay(contents: bytes, heat: np.ndarray, scale: Optional[tuple[float, float]]) -> bytes:
    """PNG of the image with the anomaly map (resized to it) blended on top as a JET colour map.

    ``scale`` (low, high) maps values to colours; without it, each map spans its own range.
    """
    image = tf.io.decode_image(contents, channels=3, expand_animations=False).numpy()
    heat = cv2.resize(heat.astype(np.float32), (image.shape[1], image.shape[0]),
                      interpolation=cv2.INTER_LINEAR)
    low, high = scale if scale else (float(heat.min()), float(heat.max()))
    norm = np.clip((heat - low) / max(high - low, 1e-12), 0.0, 1.0)
    colours = cv2.applyColorMap((norm * 255).astype(np.uint8), cv2.COLORMAP_JET)
    blended = cv2.addWeighted(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), 0.5, colours, 0.5, 0)
    ok, png = cv2.imencode(".png", blended)
    if not ok:
        raise RuntimeError("PNG encoding of a heatmap failed")
    return png.tobytes()


def predict(model_path: str, paths: Sequence[str], root: str, output_dir: str,
            batch_size: int, heatmaps: bool, threshold: Optional[float],
            progress: bool) -> dict:
    """Scores ``paths`` and writes the outputs; returns the summary."""
    loaded = savedmodel.load(model_path)
    signature = loaded.signatures["serving_default"]
    if "image_bytes" not in signature.structured_input_signature[1]:
        raise ValueError(f"the model at {model_path!r} has no encoded-image serving_default "
                         "signature (exported by an older version?); re-export it with "
                         "python -m launch.export")
    meta = savedmodel.read_metadata(model_path)
    scale = meta.get("anomaly_map_range")
    csv_path = os.path.join(output_dir, "predictions.csv")
    tmp = f"{csv_path}.tmp-{uuid.uuid4().hex[:8]}"
    tf.io.gfile.makedirs(output_dir)
    rows, failed, stored = [], [], None
    bar = keras.utils.Progbar(len(paths), unit_name="image", verbose=1 if progress else 0)
    try:
        with tf.io.gfile.GFile(tmp, "w") as f:
            writer = csv.writer(f)
            writer.writerow(CSV_FIELDS)
            for chunk in batches(paths, batch_size):
                for path, out, error in score_batch(signature, chunk):
                    if out is None:
                        failed.append({"path": path, "error": error})
                        writer.writerow([path, "", "", error])
                        continue
                    score = float(out["score"])
                    stored = float(out["threshold"])
                    cut = stored if threshold is None else threshold
                    row = {"path": path, "score": score, "is_anomaly": bool(score > cut)}
                    if heatmaps and "anomaly_map" in out:
                        rel = os.path.splitext(os.path.relpath(path, root) if root else path)[0]
                        row["heatmap"] = os.path.join(output_dir, "heatmaps", rel + ".png")
                        files.write_bytes(row["heatmap"],
                                          overlay(out["_bytes"], out["anomaly_map"], scale))
                    rows.append(row)
                    writer.writerow([path, f"{score:.9g}", int(row["is_anomaly"]), ""])
                bar.add(len(chunk))
        tf.io.gfile.rename(tmp, csv_path, overwrite=True)
    finally:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.remove(tmp)
    used = threshold if threshold is not None else stored
    summary = {
        "model": model_path,
        "images": len(paths),
        "scored": len(rows),
        "anomalous": sum(r["is_anomaly"] for r in rows),
        "failed": len(failed),
        "threshold": used if used is not None and math.isfinite(used) else None,
        "threshold_source": "--threshold" if threshold is not None else "model",
    }
    files.write_json(os.path.join(output_dir, "predictions.json"),
                     {"summary": summary, "predictions": rows, "failed": failed})
    return summary | {"failed_files": failed}


def main(argv: list[str]) -> None:
    flag_defs.start(argv)
    try:
        if not FLAGS.model or not FLAGS.images:
            raise ValueError("--model and --images are required")
        if FLAGS.predict_batch_size <= 0:
            raise ValueError(f"--predict_batch_size must be positive, got "
                             f"{FLAGS.predict_batch_size}")
        category = None if FLAGS.category in (["all"], []) else FLAGS.category[0]
        model_path = savedmodel.resolve(FLAGS.model, category)
        paths, root = find_images(FLAGS.images)
        if not paths:
            raise ValueError(f"--images={FLAGS.images} matches no image files "
                             f"({', '.join(IMAGE_EXTENSIONS)} in a folder, or a glob)")
        output_dir = FLAGS.output_dir or "predictions"
        print(f"Scoring {len(paths)} images with {model_path}")
        summary = predict(model_path, paths, root, output_dir, FLAGS.predict_batch_size,
                          FLAGS.heatmaps, FLAGS.threshold, FLAGS.progress)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    threshold = summary["threshold"]
    print(f"Scored {summary['scored']} of {summary['images']} images: {summary['anomalous']} "
          f"anomalous (threshold {threshold if threshold is not None else 'none stored'}).")
    print(f"Results: {os.path.join(output_dir, 'predictions.csv')} and predictions.json")
    if summary["failed"]:
        print(f"{summary['failed']} image(s) could not be scored:", file=sys.stderr)
        for item in summary["failed_files"]:
            print(f"  {item['path']}: {item['error']}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
