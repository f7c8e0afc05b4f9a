"""A self-contained HTML report of an experiment (see :mod:`cutpaste_tf.analysis.experiment`): its
tables, and per setting and category the ROC curves of every seed's model and of their ensemble.

Each run stays an ordinary model dir with its own report (``python -m launch.report
--model_dir=<run>``); this page links to the run folders. Needs matplotlib.
"""

from __future__ import annotations

import html
import json
import os

import numpy as np
import tensorflow as tf

from cutpaste_tf import devices, files, plots, rundir
from cutpaste_tf.evaluation import ensemble
from cutpaste_tf.reporting import report


def roc_overlay_png(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> bytes:
    """ROC curves of several score sets (label -> (labels, scores)) on one plot."""
    from sklearn.metrics import roc_auc_score, roc_curve
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for name, (labels, scores) in curves.items():
        fpr, tpr, _ = roc_curve(labels, scores)
        combined = name.startswith("ensemble")
        ax.plot(fpr, tpr, lw=2.2 if combined else 1.0, color="k" if combined else None,
                label=f"{name}: {100 * roc_auc_score(labels, scores):.1f}%")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(loc="lower right", fontsize="small")
    return plots.figure_png(fig)


def _curves(experiment_dir: str, setting: dict, category: str) -> dict:
    """Per seed (labels, scores) of one category, and the ensemble's when it was computed."""
    curves, members, stats, labels = {}, [], [], {}
    for seed, rel in sorted(setting["runs"].items(), key=lambda kv: int(kv[0])):
        path = os.path.join(experiment_dir, rel, category, rundir.SCORES_FILE)
        if not tf.io.gfile.exists(path):
            continue
        scores, labels = ensemble.read_scores(path)
        paths = sorted(scores)
        curves[f"seed {seed}"] = (np.array([labels[p] for p in paths]),
                                  np.array([scores[p] for p in paths]))
        record = files.read_json(os.path.join(experiment_dir, rel, category, rundir.RESULTS_FILE))
        if "train_score_stats" in record:
            members.append(scores)
            stats.append((record["train_score_stats"]["mean"], record["train_score_stats"]["std"]))
    computed = setting.get("ensemble") or {}
    if category in computed.get("per_category", {}) and len(members) == len(setting["runs"]):
        combined = ensemble.ensemble_scores(members, stats)
        paths = sorted(combined)
        curves[f"ensemble of {len(members)}"] = (np.array([labels[p] for p in paths]),
                                                 np.array([combined[p] for p in paths]))
    return curves


def write_experiment_report(experiment_dir: str, out_path: str | None = None) -> str:
    """Writes ``<experiment_dir>/report.html`` (or ``out_path``); returns its path."""
    plots.pyplot()  # fail early and clearly without matplotlib
    summary_path = os.path.join(experiment_dir, rundir.RESULTS_FILE)
    if not tf.io.gfile.exists(summary_path):
        raise ValueError(f"{experiment_dir!r} holds no results.json of a launch.experiment run")
    summary = files.read_json(summary_path)
    if "settings" not in summary:
        raise ValueError(f"{summary_path} is not an experiment's results.json (no 'settings'); "
                         "for one run use model_dir=<run>")
    out_path = out_path or os.path.join(experiment_dir, rundir.REPORT_FILE)
    name = os.path.basename(os.path.normpath(experiment_dir))
    body = [f"<h1>CutPaste experiment: {html.escape(name)}</h1>"]
    with tf.io.gfile.GFile(os.path.join(experiment_dir, rundir.RESULTS_TABLE)) as f:
        body.append(report.markdown_to_html(f.read()))
    for setting in summary["settings"]:
        body.append(f"<h2>{html.escape(setting['name'])}</h2>")
        runs = ", ".join(html.escape(f"seed {s}: {rel}") for s, rel in setting["runs"].items())
        body.append(f"<p>Runs (model dirs under the experiment dir): {runs}</p>")
        figures = []
        for category in sorted(setting["per_category"]):
            curves = _curves(experiment_dir, setting, category)
            if curves:
                figures.append(report.img_tag(roc_overlay_png(curves, f"{category}: ROC"),
                                         f"{category} ROC curves"))
        body.append('<div class="plots">' + "".join(figures) + "</div>")
    hw = json.dumps(devices.hardware(), indent=2)
    body.append(f"<h2>Hardware (of this report)</h2><pre>{html.escape(hw, quote=False)}</pre>")
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>CutPaste experiment</title><style>{report.CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")
    files.write_text(out_path, page)
    return out_path
