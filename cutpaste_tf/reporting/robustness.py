"""The drift stress test as a table and a figure (results.md, the HTML report,
``launch.robustness``); the figures come from :mod:`cutpaste_tf.evaluation.robustness`."""

from __future__ import annotations

import numpy as np

from cutpaste_tf import files, plots
from cutpaste_tf.evaluation.robustness import TARGET_FALSE_ALARMS


def table_markdown(name: str, result: dict) -> str:
    """One category's stress test as a Markdown table (percentages; spreads signed)."""
    s = result["summary"]
    lines = [f"#### {name}: drift stress test ({result['num_normal']} {result['normals']} "
             f"normals, {result['num_anomalies']} {result.get('anomalies', 'anomalies')})", "",
             "| shift | normals above threshold % | AUROC vs unshifted anomalies % | "
             "median score moves (spreads) |", "| --- | ---: | ---: | ---: |"]
    for r in result["rows"]:
        lines.append(f"| {r['shift']} | {100 * r['false_alarm_rate']:.0f} | "
                     f"{100 * r['auroc']:.1f} | {r['median_shift_sigma']:+.2f} |")
    if "worst_false_alarm_10" in s:
        verdict = "meets" if s["meets_false_alarm_target"] else "misses"
        lines += ["", f"Worst ±10 % brightness/contrast: {100 * s['worst_false_alarm_10']:.0f}% "
                  f"of normals flagged ({s['worst_false_alarm_10_shift']}; {verdict} the "
                  f"{100 * TARGET_FALSE_ALARMS:.0f}% target). Worst AUROC "
                  f"{100 * s['worst_auroc']:.1f}% ({s['worst_auroc_shift']}), "
                  f"{100 * s['worst_auroc_drop']:.1f} points below the clean "
                  f"{100 * s['clean_auroc']:.1f}%."]
    return "\n".join(lines) + "\n"


def figure(name: str, result: dict):
    """The figure of one category's stress test (a matplotlib Figure): per shift, the share of
    normals above the threshold and the AUROC against unshifted anomalies; the unshifted
    values dashed, the false-alarm target dotted."""
    plt = plots.pyplot("The drift stress test's figure")
    rows = result["rows"]
    labels = [r["shift"] for r in rows[1:]]
    y = np.arange(len(labels))
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.28 * len(labels) + 1.4), sharey=True)
    axes[0].barh(y, [100 * r["false_alarm_rate"] for r in rows[1:]], color="tab:red")
    axes[0].axvline(100 * rows[0]["false_alarm_rate"], color="grey", ls="--", lw=1)
    axes[0].axvline(100 * TARGET_FALSE_ALARMS, color="black", ls=":", lw=1)
    axes[0].set_xlabel("normals above threshold (%)")
    axes[0].set_xlim(0, 100)
    axes[1].barh(y, [100 * r["auroc"] for r in rows[1:]], color="tab:blue")
    axes[1].axvline(100 * rows[0]["auroc"], color="grey", ls="--", lw=1)
    axes[1].set_xlim(max(0, min(100 * r["auroc"] for r in rows) - 10), 100)
    axes[1].set_xlabel("AUROC, shifted normals vs anomalies (%)")
    axes[0].set_yticks(y, labels, fontsize=7)
    axes[0].invert_yaxis()
    fig.suptitle(f"{name}: drift stress test (dashed: unshifted; dotted: target)", fontsize=9)
    fig.tight_layout()
    return fig


def save(name: str, result: dict, path: str) -> str:
    """:func:`figure` written as a PNG to ``path``."""
    files.write_bytes(path, plots.figure_png(figure(name, result), dpi=100, tight=False))
    return path


def summary_markdown(results: dict[str, dict]) -> str:
    """The run's drift table for results.md: per category, the AUROC, the AUROC with the test
    normals 8 % darker (the simulated drift), whether the test normals drifted from the
    training images, and the stress test's headline figures; a note with each drift warning.
    Empty when no category has any of them."""
    rows = {n: r for n, r in results.items()
            if "drift" in r or "simulated_drift" in r or "robustness" in r}
    if not rows:
        return ""
    lines = ["### Drift: the capture shifted", "",
             "| Category | AUROC % | AUROC, test normals 8% darker % | test normals drifted | "
             "±10% lighting: normals flagged % (target ≤ "
             f"{100 * TARGET_FALSE_ALARMS:.0f}) | worst shift: AUROC % |",
             "| --- | ---: | ---: | --- | ---: | --- |"]
    notes = []
    for name in sorted(rows):
        r = rows[name]
        sim = r.get("simulated_drift", {}).get("auroc")
        test = r.get("drift", {}).get("test_normals", {})
        drifted = "—" if not test else ("⚠ yes" if test.get("drifted") else "no")
        stress = r.get("robustness", {})
        s = stress.get("summary", {})
        flagged = (f"{100 * s['worst_false_alarm_10']:.0f} ({s['worst_false_alarm_10_shift']})"
                   if "worst_false_alarm_10" in s else "—")
        worst = (f"{100 * s['worst_auroc']:.1f} ({s['worst_auroc_shift']})"
                 if "worst_auroc" in s else stress.get("skipped", "—"))
        lines.append(f"| {name} | {100 * r['auroc']:.1f} | "
                     f"{'—' if sim is None else f'{100 * sim:.1f}'} | {drifted} | {flagged} | "
                     f"{worst} |")
        if test.get("drifted"):
            notes.append(f"- {name}: {r['drift'].get('warning', '')}")
    if notes:
        lines += ["", "⚠ **The test normals differ from the training images**: their AUROC may "
                  "measure the drift, not the defects.", *notes]
    lines += ["", "Stress test: held-out (or out-of-fold) normal training images shifted, "
              "against unshifted anomalies; per shift in the report and each category's "
              "robustness.json (`python -m launch.robustness` reruns it)."]
    return "\n".join(lines) + "\n"
