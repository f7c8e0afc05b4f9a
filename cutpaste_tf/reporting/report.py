"""The HTML report of a finished run, a few MB whatever the size of the test set.

One file that reads on its own (plots as embedded PNGs, pictures as small embedded JPEG
thumbnails, inline CSS, no scripts) and links to the full-size pictures on disk: the results
against the paper, the proxy task's training accuracy per class (with a warning for a run that
did not learn it), ROC curves, score histograms with the threshold, training curves, the
augmented training views, each category's errors (:mod:`gallery`: the lowest-scoring defects
and the highest-scoring normals), the settings and the hardware. Plots need matplotlib
(`pip install -e .[viz]`); the rest of the package works without it.
"""

from __future__ import annotations

import base64
import html
import json
import os

import numpy as np
import tensorflow as tf

from cutpaste_tf import devices, files, plots, rundir
from cutpaste_tf.evaluation import evaluate
from cutpaste_tf.reporting import gallery, robustness
from cutpaste_tf.training import learning

MAX_VIEWS = 16  # augmented training views per category
VIEW_THUMB = (160, 160)  # (height, width) at most
CURVES = ("train/loss", "train/accuracy", "train/learning_rate")

CSS = """
body{font-family:sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px}
td{text-align:right}td:first-child{text-align:left}
.gallery img{max-width:180px;margin:3px;border:1px solid #ddd}
.gallery a img{max-width:320px}
.plots img{max-width:380px;margin:3px}figure{display:inline-block;margin:3px}
figcaption{font-size:small;text-align:center}pre{background:#f4f4f4;padding:1em;overflow:auto}
.warning{background:#fff3cd;border:1px solid #e0a800;padding:.6em 1em}
"""


def img_tag(png: bytes, alt: str = "") -> str:
    """An <img> tag with the PNG embedded."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def roc_png(labels: np.ndarray, scores: np.ndarray, title: str) -> bytes:
    """ROC curve of the image scores."""
    from sklearn.metrics import roc_auc_score, roc_curve
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(4, 4))
    if len(set(labels.tolist())) == 2:
        fpr, tpr, _ = roc_curve(labels, scores)
        ax.plot(fpr, tpr, label=f"AUROC {100 * roc_auc_score(labels, scores):.1f}%")
        ax.legend(loc="lower right")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    return plots.figure_png(fig)


def histogram_png(labels: np.ndarray, scores: np.ndarray, threshold: float | None,
                  title: str) -> bytes:
    """Histograms of normal and defective test scores, with the threshold as a line."""
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    bins = np.histogram_bin_edges(scores, bins=30)
    ax.hist(scores[labels == 0], bins=bins, alpha=0.6, label="normal")
    ax.hist(scores[labels == 1], bins=bins, alpha=0.6, label="defective")
    if threshold is not None:
        ax.axvline(threshold, color="k", ls="--", label=f"threshold {threshold:.3g}")
    ax.set(xlabel="anomaly score", ylabel="test images", title=title)
    ax.legend()
    return plots.figure_png(fig)


def read_events(log_dir: str) -> tuple[dict[str, list[tuple[int, float]]], dict[str, list[bytes]]]:
    """Scalars (tag -> [(step, value)]) and encoded PNG images (tag -> [png]) of event files."""
    scalars: dict[str, list[tuple[int, float]]] = {}
    images: dict[str, list[bytes]] = {}
    for path in sorted(tf.io.gfile.glob(os.path.join(log_dir, "events.out.tfevents.*"))):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                if value.HasField("simple_value"):
                    scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
                elif plugin == "scalars":
                    scalars.setdefault(value.tag, []).append(
                        (event.step, float(tf.make_ndarray(value.tensor))))
                elif plugin == "images":
                    # [width, height, png, png, ...]
                    images.setdefault(value.tag, []).extend(
                        bytes(b) for b in tf.make_ndarray(value.tensor).ravel()[2:])
    return scalars, images


def curves_png(scalars: dict[str, list[tuple[int, float]]], title: str) -> bytes | None:
    """Loss, accuracy and learning rate against the step; None if none was logged."""
    tags = [t for t in CURVES if t in scalars]
    if not tags:
        return None
    plt = plots.pyplot()
    fig, axes = plt.subplots(1, len(tags), figsize=(4 * len(tags), 3.2), squeeze=False,
                             layout="constrained")
    for ax, tag in zip(axes[0], tags):
        steps, values = zip(*sorted(scalars[tag]))
        ax.plot(steps, values)
        ax.set(xlabel="step", title=tag.split("/")[-1])
    fig.suptitle(title)
    return plots.figure_png(fig)


def accuracy_png(rows: list[dict], classes: list[str], chance: float, title: str) -> bytes:
    """Proxy-task training accuracy (window means) against the step, overall and per class,
    with chance and the "not learning" line."""
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.2), layout="constrained")
    steps = [r["step"] for r in rows]
    ax.plot(steps, [r["accuracy"] for r in rows], "k-", lw=2, label="all")
    for i, name in enumerate(classes):
        ax.plot(steps, [r["accuracy_per_class"][i] for r in rows], lw=1, label=name)
    ax.axhline(chance, color="grey", ls=":", label="chance")
    ax.axhline(chance + learning.MARGIN, color="#e0a800", ls="--", lw=1, label="not learning below")
    ax.set(xlabel="step", ylabel="training accuracy", ylim=(0, 1.02), title=title)
    ax.legend(fontsize="small", loc="lower right")
    return plots.figure_png(fig)


def training_section(model_dir: str, categories: list[str]) -> str:
    """Near the top of the report: did each category's proxy task learn? A warning naming the
    runs that did not, and the training accuracy per class of every category."""
    parts, figures, flagged = ['<h2 id="training">Proxy task: training accuracy</h2>'], [], []
    for category in categories:
        cdir = os.path.join(model_dir, category)
        result = files.read_json(os.path.join(cdir, rundir.RESULTS_FILE))
        verdict = result.get("learning")
        if verdict and not verdict["learned"]:
            flagged.append(f"{html.escape(category)} ({learning.status(verdict)}: "
                           f"{learning.figures(verdict)})")
        path = os.path.join(cdir, learning.CURVE_FILE)
        if tf.io.gfile.exists(path):
            curve = files.read_json(path)
            if curve["rows"]:
                figures.append(img_tag(accuracy_png(curve["rows"], curve["classes"],
                                                  learning.chance(len(curve["classes"])),
                                                  f"{category}: proxy task"),
                                     "training accuracy per class"))
    if flagged:
        parts.append('<p class="warning"><b>Proxy task not learned</b> by ' + "; ".join(flagged)
                     + ": training accuracy within a few points of chance after a quarter of "
                     "the steps (or at the end). The AUROCs of these runs do not measure the "
                     "method; a run that learned late needs more steps.</p>")
    if not figures:
        return "" if not flagged else "\n".join(parts)
    parts.append('<div class="plots">' + "".join(figures) + "</div>")
    return "\n".join(parts)


def _threshold(category_dir: str, result: dict) -> float | None:
    """The category's decision threshold, from results.json or threshold.json."""
    threshold = result.get("threshold")
    if threshold is None and tf.io.gfile.exists(os.path.join(category_dir, rundir.THRESHOLD_FILE)):
        threshold = files.read_json(os.path.join(category_dir, rundir.THRESHOLD_FILE)).get("threshold")
    if isinstance(threshold, dict):
        threshold = threshold.get("value")
    return None if threshold is None else float(threshold)


def markdown_to_html(text: str) -> str:
    """The headings and pipe tables of results.md as HTML (nothing else is needed)."""
    out: list[str] = []
    rows: list[str] = []

    def flush():
        if rows:
            out.append("<table>" + "".join(rows) + "</table>")
            rows.clear()

    for line in text.splitlines():
        line = line.strip()
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if all(set(c) <= set("-: ") for c in cells):
                continue
            tag = "th" if not rows else "td"
            rows.append("<tr>" + "".join(f"<{tag}>{_inline(c)}</{tag}>" for c in cells) + "</tr>")
            continue
        flush()
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")) + 1, 6)
            out.append(f"<h{level}>{_inline(line.lstrip('#').strip())}</h{level}>")
        elif line:
            out.append(f"<p>{_inline(line)}</p>")
    flush()
    return "\n".join(out)


def _inline(text: str) -> str:
    """Escapes text and renders **bold** and *italic*."""
    import re
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"\*(.+?)\*", r"<i>\1</i>", text)


def _categories(model_dir: str) -> list[str]:
    """Categories of the run that have results."""
    return sorted(os.path.basename(os.path.dirname(p))
                  for p in tf.io.gfile.glob(os.path.join(model_dir, "*", rundir.RESULTS_FILE)))


def category_section(model_dir: str, category: str, out_path: str | None = None) -> str:
    """The plots and galleries of one category, for a report written to ``out_path``."""
    out_path = out_path or os.path.join(model_dir, rundir.REPORT_FILE)
    cdir = os.path.join(model_dir, category)
    result = files.read_json(os.path.join(cdir, rundir.RESULTS_FILE))
    parts = [f'<h2 id="{html.escape(category)}">{html.escape(category)}</h2>']
    summary = {k: result[k] for k in ("auroc", "pixel_auroc", "aupro", "gradcam_layer",
                                      "pixel_auroc_not_reported", "num_train",
                                      "num_test_normal", "num_test_anomalous", "train_steps")
               if k in result}
    summary["threshold"] = _threshold(cdir, result)
    parts.append("<table>" + "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(_fmt(v))}</td></tr>"
        for k, v in summary.items()) + "</table>")
    figures, rows = [], []
    scores_csv = os.path.join(cdir, rundir.SCORES_FILE)
    if tf.io.gfile.exists(scores_csv):
        rows = evaluate.score_rows(scores_csv)
        _, labels, scores = evaluate.read_scores(scores_csv)
        figures.append(img_tag(roc_png(labels, scores, f"{category}: ROC"), "ROC curve"))
        figures.append(img_tag(histogram_png(labels, scores, summary["threshold"],
                                        f"{category}: test scores"), "score histogram"))
    scalars, images = read_events(os.path.join(cdir, rundir.LOG_DIR))
    curves = curves_png(scalars, f"{category}: training")
    if curves:
        figures.append(img_tag(curves, "training curves"))
    parts.append('<h3>Scores and training</h3><div class="plots">' + "".join(figures) + "</div>")
    parts.append(stress_section(category, result))
    views = [(tag, png) for tag in sorted(images) for png in images[tag]][:MAX_VIEWS]
    if views:
        parts.append("<h3>Augmented training views</h3><div class=\"gallery\">" + "".join(
            _caption(gallery.jpeg_tag(gallery.thumbnail(png, VIEW_THUMB), tag), tag)
            for tag, png in views) + "</div>")
    if rows:
        parts.append(gallery.section(cdir, rows, summary["threshold"],
                                     os.path.dirname(out_path) or "."))
    return "\n".join(parts)


def stress_section(category: str, result: dict) -> str:
    """The category's drift stress test: its figure and its table (empty without one)."""
    stress = result.get("robustness")
    if not stress or "rows" not in stress:
        return ""
    return ('<h3>Drift stress test</h3><div class="plots">'
            + img_tag(plots.figure_png(robustness.figure(category, stress)), "drift stress test")
            + "</div>" + markdown_to_html(robustness.table_markdown(category, stress)))


def drift_banner(model_dir: str, categories: list[str]) -> str:
    """A warning near the top naming the categories whose test normals drifted."""
    lines = []
    for category in categories:
        result = files.read_json(os.path.join(model_dir, category, rundir.RESULTS_FILE))
        warning = result.get("drift", {}).get("warning")
        if warning:
            lines.append(f"<b>{html.escape(category)}</b>: {html.escape(warning)}")
    if not lines:
        return ""
    return ('<p class="warning"><b>The test images drifted from the training images.</b> '
            + "<br>".join(lines) + "</p>")


def _caption(img: str, caption: str) -> str:
    return f"<figure>{img}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_report(model_dir: str, out_path: str | None = None) -> str:
    """Writes the HTML report of a run (default <model_dir>/report.html); returns its path."""
    plots.pyplot()  # fail early and clearly without matplotlib
    out_path = out_path or os.path.join(model_dir, rundir.REPORT_FILE)
    categories = _categories(model_dir)
    body = [f"<h1>CutPaste report: {html.escape(os.path.basename(os.path.normpath(model_dir)))}"
            "</h1>", '<h2 id="results">Results against the paper</h2>']
    results_md = os.path.join(model_dir, rundir.RESULTS_TABLE)
    if tf.io.gfile.exists(results_md):
        with tf.io.gfile.GFile(results_md, "r") as f:
            body.append(markdown_to_html(f.read()))
    body.append(drift_banner(model_dir, categories))
    body.append(training_section(model_dir, categories))
    body.append("<p>" + " · ".join(f'<a href="#{html.escape(c)}">{html.escape(c)}</a>'
                                   for c in categories) + "</p>")
    body += [category_section(model_dir, c, out_path) for c in categories]
    config_path = os.path.join(model_dir, rundir.CONFIG_FILE)
    if tf.io.gfile.exists(config_path):
        config = json.dumps(files.read_json(config_path), indent=2, sort_keys=True)
        body.append('<h2 id="settings">Settings</h2>'
                    f"<pre>{html.escape(config, quote=False)}</pre>")
    hw = json.dumps(devices.hardware(), indent=2)
    body.append('<h2 id="hardware">Hardware (of this report)</h2>'
                f"<pre>{html.escape(hw, quote=False)}</pre>")
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>CutPaste report</title><style>{CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")
    files.write_text(out_path, page)
    return out_path
