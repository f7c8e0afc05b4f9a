"""A run's summary over its categories: ``results.json`` and the Table-1-style ``results.md``
(image AUROC, localisation, Table 3 features, per defect type, drift, runs that did not learn,
categories that failed)."""

from __future__ import annotations

import os
from typing import Sequence

import tensorflow as tf

from cutpaste_tf import files, rundir
from cutpaste_tf.evaluation import evaluate, metrics
from cutpaste_tf.pipeline import failures
from cutpaste_tf.reporting import paper_settings, robustness, tables
from cutpaste_tf.training import learning


def summarize_run(model_dir: str, task: str) -> str:
    """Writes ``results.json`` and the Table-1-style ``results.md`` over every category in
    ``model_dir``, with the categories whose last attempt failed ("failed": category ->
    stage, error, message; :mod:`cutpaste_tf.pipeline.failures`); returns the Markdown."""
    results = rundir.collect_results(model_dir)
    failed = failures.collect(model_dir)
    per_category = {name: r["auroc"] for name, r in results.items()}
    kinds = {name: r["kind"] for name, r in results.items()}
    flagged = learning.not_learned(results)
    title = f"Image AUROC (%), {task_title(task)}"
    if results:
        table = tables.markdown_table(per_category, kinds, task, title=title, flagged=flagged)
        averages = metrics.summarize(per_category, kinds)["averages"]
    else:
        table, averages = f"### {title}\n\nNo category finished.\n", {}
    if flagged:
        table += "\n" + not_learned_note(results, flagged) + "\n"
    if failed:
        table += "\n" + failures.markdown(failed)
    summary_json = {
        "task": task,
        "categories": results,
        "averages": {k: v[0] for k, v in averages.items()},
        "not_learned": flagged,
        "failed": failed,
    }
    departures = run_departures(model_dir)
    if departures is not None:
        summary_json["paper_differences"] = departures
        table += "\n" + paper_settings.markdown(departures)
    table += _localization(results, kinds, task, summary_json)
    transferred = {n: r for n, r in results.items() if "transfer" in r}
    if transferred:
        table += "\n" + tables.table3_markdown(transferred, kinds)
    per_defect = defect_table(with_defect_counts(model_dir, results))
    if per_defect:
        table += "\n" + per_defect
    drifted = robustness.summary_markdown(results)
    if drifted:
        table += "\n" + drifted
        summary_json["drift_warnings"] = {
            n: r["drift"]["warning"] for n, r in results.items()
            if r.get("drift", {}).get("warning")}
    files.write_json(os.path.join(model_dir, rundir.RESULTS_FILE), summary_json)
    files.write_text(os.path.join(model_dir, rundir.RESULTS_TABLE), table + "\n")
    return table


def run_departures(model_dir: str) -> "list[dict] | None":
    """The settings the run in ``model_dir`` departs from the paper in, from its config.json
    (None without one)."""
    if not tf.io.gfile.exists(os.path.join(model_dir, rundir.CONFIG_FILE)):
        return None
    return paper_settings.differences(rundir.load_run_config(model_dir))


def _localization(results: dict[str, dict], kinds: dict[str, str], task: str,
                  summary_json: dict) -> str:
    """The localisation table (and the reasons for pixel AUROCs not reported) of
    :func:`summarize_run`; adds their averages to ``summary_json``."""
    table = ""
    located = {n: r for n, r in results.items() if "pixel_auroc" in r}
    if located:
        pixel = {n: r["pixel_auroc"] for n, r in located.items()}
        pro = {n: r["aupro"] for n, r in located.items()}
        methods = sorted({" ".join([r.get("localization_method", "patch"),
                                    *([r["gradcam_layer"]] if "gradcam_layer" in r else [])])
                          for r in located.values()})
        table += "\n" + tables.localization_table(
            pixel, pro, kinds, title=f"Localisation ({', '.join(methods)}), {task}")
        summary_json["pixel_averages"] = {
            k: v[0] for k, v in metrics.summarize(pixel, kinds)["averages"].items()}
        summary_json["aupro_averages"] = {
            k: v[0] for k, v in metrics.summarize(pro, kinds)["averages"].items()}
    unreported = {n: r["pixel_auroc_not_reported"] for n, r in results.items()
                  if "pixel_auroc_not_reported" in r}
    if unreported:
        table += "\nLocalisation (gradcam): " + "; ".join(
            f"{n}: {why}" for n, why in sorted(unreported.items())) + ".\n"
        summary_json["pixel_not_reported"] = unreported
    return table


def with_defect_counts(model_dir: str, results: dict[str, dict]) -> dict[str, dict]:
    """``results`` where each has ``num_test_per_defect``; a result written before it was
    recorded gets it from its category's scores.csv (if there)."""
    out = {}
    for name, result in results.items():
        scores_csv = os.path.join(rundir.category_dir(model_dir, name), rundir.SCORES_FILE)
        if "num_test_per_defect" not in result and tf.io.gfile.exists(scores_csv):
            result = {**result, "num_test_per_defect": evaluate.defect_counts(scores_csv)}
        out[name] = result
    return out


def defect_table(results: dict[str, dict]) -> str:
    """Markdown: image AUROC (%) of each defect type's images against the category's normal
    test images, one row per category and defect type (categories in the paper's order, then
    the others by name; defect types by name), the pixel AUROC column only when some category
    has it. Empty when no category has more than one defect type."""
    if all(len(r.get("auroc_per_defect", {})) <= 1 for r in results.values()):
        return ""
    pixel = any(r.get("pixel_auroc_per_defect") for r in results.values())
    lines = ["### Image AUROC (%) per defect type", "",
             "| Category | Defect type | Images | AUROC %"
             + (" | Pixel AUROC % |" if pixel else " |"),
             "| --- | --- | ---: | ---:" + (" | ---: |" if pixel else " |")]
    for name in tables.order_categories(sorted(results)):
        result = results[name]
        counts = result.get("num_test_per_defect", {})
        for defect, value in sorted(result.get("auroc_per_defect", {}).items()):
            cells = [tables.display_name(name), tables.display_name(defect),
                     str(counts.get(defect, "—")), f"{100 * value:.1f}"]
            if pixel:
                px = result.get("pixel_auroc_per_defect", {}).get(defect)
                cells.append("—" if px is None else f"{100 * px:.1f}")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def not_learned_note(results: dict[str, dict], flagged: Sequence[str]) -> str:
    """The Markdown note under a results table that names the runs marked "not learning"."""
    lines = [f"⚠ **Proxy task not learned** by {', '.join(flagged)}: training accuracy within "
             f"{100 * learning.MARGIN:.0f} points of chance after a quarter of the steps or at "
             "the end, so these AUROCs do not measure the method:"]
    for name in flagged:
        verdict = results[name]["learning"]
        lines.append(f"- {name}: {learning.status(verdict)}, {learning.figures(verdict)}")
    return "\n".join(lines)


def task_title(task: str) -> str:
    """How tables name a proxy task: "CutPaste (3way)" for CutPaste's, "cutout task" for a
    baseline's."""
    if task in ("3way", "cutpaste", "scar", "union"):
        return f"CutPaste ({task})"
    return f"{task} task"
