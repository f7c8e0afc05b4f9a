"""A category's errors as a bounded gallery for the HTML report.

Per defect type the lowest-scoring defective test images (the misses) and the highest-scoring
normal ones (the false alarms), each as a small JPEG thumbnail linked to its full-size picture:
the heatmap PNG the run wrote (``<category>/heatmaps/<defect>/<name>.png``) or, for a run that
wrote none, the test image itself where it lies. The number shown and the bytes embedded
are capped, so the report stays a few MB whatever the size of the test set.
"""

from __future__ import annotations

import base64
import html
import os

import tensorflow as tf

from cutpaste_tf import rundir

MISSES_PER_DEFECT = 3  # lowest-scoring defective images per defect type
FALSE_ALARMS = 6  # highest-scoring normal images
MAX_SHOWN = 40  # pictures per category, whatever the number of defect types
PANEL_THUMB = (160, 320)  # (height, width) at most: a heatmap picture is image | overlay
JPEG_QUALITY = 75
BUDGET_BYTES = 3_000_000  # thumbnails embedded per category (before base64)


def sample(rows: list[dict], misses_per_defect: int = MISSES_PER_DEFECT,
           false_alarms: int = FALSE_ALARMS, max_shown: int = MAX_SHOWN) -> list[dict]:
    """The rows of scores.csv worth looking at: per defect type (in name order) its
    ``misses_per_defect`` lowest-scoring defective images, then the ``false_alarms``
    highest-scoring normal images; at most ``max_shown``. Each row gains ``kind``
    ("miss" or "false alarm") and ``score`` as a float."""
    defects: dict[str, list[dict]] = {}
    normals: list[dict] = []
    for row in rows:
        row = {**row, "score": float(row["score"])}
        if int(row["label"]) == 1:
            defects.setdefault(row["defect"], []).append({**row, "kind": "miss"})
        else:
            normals.append({**row, "kind": "false alarm"})
    chosen = [r for d in sorted(defects)
              for r in sorted(defects[d], key=lambda r: r["score"])[:misses_per_defect]]
    alarms = sorted(normals, key=lambda r: -r["score"])[:false_alarms]
    keep = max(0, max_shown - len(alarms))  # the false alarms always show
    return chosen[:keep] + alarms


def picture_name(row: dict) -> str:
    """``<defect>/<file name without extension>``: how the run names a test image's heatmap."""
    return f"{row['defect']}/{os.path.splitext(os.path.basename(row['path']))[0]}"


def thumbnail(data: bytes, max_size: tuple[int, int] = PANEL_THUMB,
              quality: int = JPEG_QUALITY) -> bytes:
    """A JPEG of an encoded image, shrunk (never enlarged) to fit ``max_size`` (height, width)."""
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    height, width = int(image.shape[0]), int(image.shape[1])
    scale = min(1.0, max_size[0] / height, max_size[1] / width)
    if scale < 1.0:
        size = [max(1, round(height * scale)), max(1, round(width * scale))]
        image = tf.image.resize(image, size, antialias=True)
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    return tf.io.encode_jpeg(image, quality=quality).numpy()


def jpeg_tag(jpeg: bytes, alt: str = "") -> str:
    """An <img> tag with the JPEG embedded."""
    data = base64.b64encode(jpeg).decode("ascii")
    return f'<img src="data:image/jpeg;base64,{data}" alt="{html.escape(alt)}">'


def href(path: str, report_dir: str) -> str:
    """A link from the report to ``path``: relative on a local disk, the full URL otherwise."""
    if "://" in path or "://" in report_dir:
        return path
    return os.path.relpath(path, report_dir).replace(os.sep, "/")


def _read(path: str) -> bytes | None:
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            return f.read()
    except (tf.errors.OpError, OSError):
        return None


def _full_size(category_dir: str, row: dict) -> tuple[str, bytes] | None:
    """The full-size picture of a sampled test image and its bytes: the run's heatmap PNG, else
    the test image itself where it lies (nothing is copied); None when neither can be read."""
    heatmap = os.path.join(category_dir, rundir.HEATMAP_DIR, picture_name(row) + ".png")
    data = _read(heatmap)
    if data is not None:
        return heatmap, data
    data = _read(row["path"])
    return None if data is None else (row["path"], data)


def _caption(row: dict, threshold: float | None) -> str:
    """``cut/003 · 7.12 · missed``: name, score, and what the threshold made of it."""
    verdict = row["kind"]
    if threshold is not None:
        if row["kind"] == "miss":
            verdict = "missed" if row["score"] < threshold else "caught (lowest scores)"
        else:
            verdict = "false alarm" if row["score"] >= threshold else "passed (highest scores)"
    return f"{picture_name(row)} · {row['score']:.4g} · {verdict}"


def section(category_dir: str, rows: list[dict], threshold: float | None,
            report_dir: str) -> str:
    """The "Errors" part of a category's report section: the sample's thumbnails, each a link
    to its full-size picture, and links to the folder and grid of all heatmaps."""
    chosen = sample(rows)
    figures, embedded, dropped = [], 0, 0
    for row in chosen:
        found = _full_size(category_dir, row)
        if found is None:
            dropped += 1
            continue
        path, data = found
        jpeg = thumbnail(data)
        if embedded + len(jpeg) > BUDGET_BYTES:
            dropped += 1
            continue
        embedded += len(jpeg)
        caption = _caption(row, threshold)
        figures.append(f'<figure><a href="{html.escape(href(path, report_dir))}">'
                       f"{jpeg_tag(jpeg, caption)}</a>"
                       f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    num_defective = sum(int(r["label"]) == 1 for r in rows)
    parts = ["<h3>Errors</h3>",
             f"<p>Of {len(rows)} test images ({num_defective} defective): per defect type the "
             f"{MISSES_PER_DEFECT} lowest-scoring defective images (the misses) and the "
             f"{FALSE_ALARMS} highest-scoring normal images (the false alarms). "
             "Click a thumbnail for the full-size picture."
             + (f" {dropped} of the {len(chosen)} chosen could not be shown (file unreadable "
                "or the size budget spent)." if dropped else "") + "</p>"]
    if figures:
        parts.append('<div class="gallery">' + "".join(figures) + "</div>")
    heatmaps = os.path.join(category_dir, rundir.HEATMAP_DIR)
    grids = sorted(tf.io.gfile.glob(os.path.join(heatmaps, "*_grid.png")))
    if grids or tf.io.gfile.isdir(heatmaps):
        links = [f'<a href="{html.escape(href(heatmaps, report_dir))}/">every heatmap</a>']
        links += [f'<a href="{html.escape(href(g, report_dir))}">{html.escape(os.path.basename(g))}'
                  "</a>" for g in grids]
        parts.append("<p>Full size, all test images: " + " · ".join(links) + "</p>")
    return "\n".join(parts)

