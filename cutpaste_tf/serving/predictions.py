"""Scoring image files with an exported model: ``predictions.csv``, ``predictions.json`` and
heatmap overlays (what ``launch.predict`` writes).

Images are read and scored ``batch_size`` at a time through the model's ``serving_default``
signature (encoded bytes, decoded and preprocessed in the graph), so memory stays bounded for
any number of files; a file that cannot be read or decoded fails only itself. The progress is
Keras' bar on a terminal, else a plain line every :data:`PROGRESS_EVERY_S` seconds
(:mod:`cutpaste_tf.console`), so a log file or pipe gets no carriage returns or colour codes.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import re
import sys
import time
import uuid
from typing import Iterator, Optional, Sequence

import cv2
import keras
import numpy as np
import tensorflow as tf

from cutpaste_tf import console, files
from cutpaste_tf.data.index import IMAGE_EXTENSIONS
from cutpaste_tf.evaluation import drift
from cutpaste_tf.serving import savedmodel

CSV_FIELDS = ["path", "score", "is_anomaly", "error"]
PREDICTIONS_CSV = "predictions.csv"
PREDICTIONS_JSON = "predictions.json"
HEATMAP_DIR = "heatmaps"
PROGRESS_EVERY_S = 30.0  # seconds between plain progress lines (not on a terminal)


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


def predict_images(model: str, images: str, output_dir: str, category: Optional[str] = None,
                   batch_size: int = 16, heatmaps: bool = True,
                   threshold: Optional[float] = None, progress: bool = True) -> dict:
    """Scores the images ``images`` names (a folder, searched recursively, or a glob) with the
    export ``model`` names (see :func:`cutpaste_tf.serving.savedmodel.resolve`) and writes the
    outputs into ``output_dir``; returns the summary (:func:`predict`)."""
    model_path = savedmodel.resolve(model, category)
    paths, root = find_images(images)
    if not paths:
        raise ValueError(f"images={images} matches no image files "
                         f"({', '.join(IMAGE_EXTENSIONS)} in a folder, or a glob)")
    print(f"Scoring {len(paths)} images with {model_path}")
    return predict(model_path, paths, root, output_dir, batch_size, heatmaps, threshold,
                   progress)


def predict(model_path: str, paths: Sequence[str], root: str, output_dir: str,
            batch_size: int, heatmaps: bool, threshold: Optional[float],
            progress: bool) -> dict:
    """Scores ``paths`` and writes ``predictions.csv``, ``predictions.json`` and (``heatmaps``,
    for a model with an anomaly map) overlays under ``heatmaps/``, named by each image's path
    relative to ``root``. ``threshold`` overrides the model's for the decisions written here.
    Returns the summary, with ``failed_files`` (path and error of each image not scored)."""
    loaded = savedmodel.load(model_path)
    signature = loaded.signatures["serving_default"]
    if "image_bytes" not in signature.structured_input_signature[1]:
        raise ValueError(f"the model at {model_path!r} has no encoded-image serving_default "
                         "signature (exported by an older version?); re-export it with "
                         "python -m launch.export")
    metadata = savedmodel.read_metadata(model_path)
    scale = metadata.get("anomaly_map_range")
    heatmap_dir = os.path.join(output_dir, HEATMAP_DIR) if heatmaps else None
    tf.io.gfile.makedirs(output_dir)
    with _csv_writer(os.path.join(output_dir, PREDICTIONS_CSV)) as writer:
        on_terminal = progress and console.is_terminal(sys.stdout)
        bar = keras.utils.Progbar(len(paths), unit_name="image", verbose=1 if on_terminal else 0)
        rows, failed, stored, stats = [], [], None, []
        start = last = time.perf_counter()
        for chunk in batches(paths, batch_size):
            for path, out, error in score_batch(signature, chunk):
                if out is None:
                    failed.append({"path": path, "error": error})
                    writer.writerow([path, "", "", error])
                    continue
                stored = float(out["threshold"])
                row = _prediction(path, out, stored if threshold is None else threshold,
                                  root, heatmap_dir, scale)
                rows.append(row)
                if "image_stats" in out:
                    stats.append(out["image_stats"])
                writer.writerow([path, f"{row['score']:.9g}", int(row["is_anomaly"]), ""])
            bar.add(len(chunk))
            done, now = len(rows) + len(failed), time.perf_counter()
            if progress and not on_terminal and done < len(paths) and (
                    now - last >= PROGRESS_EVERY_S):
                last = now
                print(f"scored {done}/{len(paths)} images "
                      f"({1000 * (now - start) / done:.0f} ms/image)", flush=True)
    summary = _summary(model_path, len(paths), rows, failed, threshold, stored)
    summary.update(drift_summary(metadata.get("drift_reference"), rows, stats, threshold))
    files.write_json(os.path.join(output_dir, PREDICTIONS_JSON),
                     {"summary": summary, "predictions": rows, "failed": failed})
    return summary | {"failed_files": failed}


@contextlib.contextmanager
def _csv_writer(path: str) -> Iterator:
    """A CSV writer (header written) into a temporary file that becomes ``path`` when the
    block ends without an error, and is removed either way."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with tf.io.gfile.GFile(tmp, "w") as f:
            writer = csv.writer(f)
            writer.writerow(CSV_FIELDS)
            yield writer
        tf.io.gfile.rename(tmp, path, overwrite=True)
    finally:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.remove(tmp)


def _prediction(path: str, out: dict, cut: float, root: str, heatmap_dir: Optional[str],
                scale: Optional[tuple[float, float]]) -> dict:
    """One scored image's row of predictions.json; writes its overlay (under ``heatmap_dir``,
    when given and the model has an anomaly map)."""
    score = float(out["score"])
    row = {"path": path, "score": score, "is_anomaly": bool(score > cut)}
    if heatmap_dir and "anomaly_map" in out:
        rel = os.path.splitext(os.path.relpath(path, root) if root else path)[0]
        row["heatmap"] = os.path.join(heatmap_dir, rel + ".png")
        files.write_bytes(row["heatmap"], overlay(out["_bytes"], out["anomaly_map"], scale))
    return row


def drift_summary(ref: Optional[dict], rows: list[dict], stats: list[np.ndarray],
                  threshold: Optional[float]) -> dict:
    """``drift`` (the scored images against the model's drift reference, see
    :mod:`cutpaste_tf.evaluation.drift`) and ``drift_warning`` (a line, "" when nothing
    drifted); empty for a model exported without a reference."""
    if not ref:
        return {}
    if threshold is not None:  # decisions at --threshold: its expected share of normals
        ref = drift.with_threshold(ref, threshold)
    result = drift.check(np.stack(stats) if stats else None, [r["score"] for r in rows], ref)
    line = drift.describe(result, "these images", "the training normals")
    if line:
        line = (f"warning: {line}; unless most of these parts are defective, the capture has "
                "drifted from the training images and the scores and decisions are not to be "
                "trusted")
    return {"drift": result, "drift_warning": line}


def _summary(model_path: str, count: int, rows: list[dict], failed: list[dict],
             threshold: Optional[float], stored: Optional[float]) -> dict:
    """The summary of predictions.json."""
    used = threshold if threshold is not None else stored
    return {
        "model": model_path,
        "images": count,
        "scored": len(rows),
        "anomalous": sum(r["is_anomaly"] for r in rows),
        "failed": len(failed),
        "threshold": used if used is not None and math.isfinite(used) else None,
        "threshold_source": "--threshold" if threshold is not None else "model",
    }
