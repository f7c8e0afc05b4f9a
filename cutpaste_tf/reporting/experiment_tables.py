"""An experiment's tables: Table 1 layout (categories x settings, our mean ± s.e. beside the
paper's, an ensemble column) and, for a sweep, the layout of Tables 7 and 8 (settings as columns,
texture / object / all rows). Written as ``results.md`` and ``results.json``.

AUROCs are fractions in the JSON, percentages in the Markdown. A paper average is shown only
where our categories of that group are exactly the paper's (MVTec AD's), since otherwise the two
numbers average over different sets.
"""

from __future__ import annotations

import os
from typing import Mapping, Optional, Sequence

from cutpaste_tf import files, rundir
from cutpaste_tf.evaluation.metrics import GROUPS
from cutpaste_tf.reporting import paper, tables
from cutpaste_tf.training import learning

AVERAGING = ("per category: mean ± standard error (sample std / sqrt(n)) over seeds; texture / "
             "object / all: as in the paper (Sec. 4.1), the mean of the categories' means ± the "
             "mean of their standard errors; \"s.e. of the average\" columns: each seed's "
             "categories averaged first, then the standard error over seeds of those per-seed "
             "averages; ensemble: each model's test scores standardised with the mean and std "
             "of its own training images' scores, averaged over the seeds' models, then AUROC")
SE_OF_AVERAGE = "s.e. of the average over seeds"


def paper_numbers(setting: Mapping, kinds: Mapping[str, str]) -> dict:
    """The paper's numbers for a setting summary: Table 1 for a task, Tables 7 / 8 for a swept
    value of CutPaste (3-way); group averages only where our categories are the paper's."""
    task, flag = setting["task"], setting["flag"]
    per_category, averages, ensemble = {}, {}, {}
    if flag is None:
        if task in paper.PAPER_TASKS:
            per_category, averages = paper.paper_results(task)
        if task == "3way":
            ensemble = paper.TABLE1["ensemble"]
    elif task == "3way":
        value = setting["value"].split(":")[-1]  # area_ratio=lo:hi -> the largest area
        try:
            averages = paper.ablation_result(flag, float(value)) or {}
        except ValueError:
            averages = {}
    comparable = {g for g in GROUPS
                  if tables.same_as_paper((c for c in kinds if g == "all" or kinds[c] == g), g)}
    return {"per_category": {c: per_category[c] for c in kinds if c in per_category},
            "averages": {g: v for g, v in averages.items() if g in comparable},
            "ensemble": {c: ensemble[c] for c in kinds if c in ensemble},
            "ensemble_averages": {g: paper.TABLE1_AVERAGES["ensemble"][g]
                                  for g in comparable} if ensemble else {}}


def _ours(stat: Optional[Mapping]) -> str:
    """Our fraction as a percentage, "mean ± se" when there is a standard error."""
    if not stat:
        return "—"
    if stat.get("se") is None:
        return f"{100 * stat['mean']:.1f}"
    return f"{100 * stat['mean']:.1f} ± {100 * stat['se']:.1f}"


def _se_of_average(stat: Optional[Mapping]) -> str:
    """The standard error over seeds of a group's per-seed averages, as a percentage."""
    over = (stat or {}).get("over_seeds")
    return "—" if not over or over.get("se") is None else f"{100 * over['se']:.1f}"


def _several_seeds(setting: Mapping) -> bool:
    return len(setting.get("runs", {})) > 1


def _mark(setting: Mapping, category: str, group: bool) -> str:
    """" ⚠" beside a category of a setting where some seed's proxy task did not learn."""
    if group or not any(r["category"] == category for r in setting.get("not_learned", [])):
        return ""
    return " ⚠"


def _fraction(value: Optional[float]) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def _label(setting: Mapping) -> str:
    label = paper.TASK_LABELS.get(setting["task"], setting["task"])
    return label if setting["flag"] is None else f"{label}, {setting['flag']}={setting['value']}"


def table1(settings: Sequence[Mapping], kinds: Mapping[str, str], with_paper: bool = True) -> str:
    """Categories grouped texture / object with averages; per setting our mean ± s.e. (and the
    paper's; the averages' ± is the paper's mean of the categories' s.e.), with several seeds
    the s.e. over seeds of the average itself on the average rows, then per setting with
    several seeds the ensemble's AUROC (and the paper's)."""
    header, getters = ["Category"], []
    for s in settings:
        header.append(f"{_label(s)} (ours)")
        getters.append(lambda c, g, s=s: _ours((s["averages"] if g else s["per_category"])
                                               .get(c)) + _mark(s, c, g))
        if with_paper:
            header.append(f"{_label(s)} (paper)")
            getters.append(lambda c, g, s=s: tables.format_paper(
                (s["paper"]["averages"] if g else s["paper"]["per_category"]).get(c)))
        if _several_seeds(s):
            header.append(f"{_label(s)}: {SE_OF_AVERAGE} (ours)")
            getters.append(lambda c, g, s=s: _se_of_average(s["averages"].get(c)) if g else "")
    for s in settings:
        if s["ensemble"] is None:
            continue
        header.append(f"Ensemble of {s['ensemble']['num_models']}, {_label(s)} (ours)")
        getters.append(lambda c, g, s=s: _fraction(
            (s["ensemble"]["averages"] if g else s["ensemble"]["per_category"]).get(c)))
        if with_paper and s["task"] == "3way" and s["flag"] is None:
            header.append("Ensemble of 5, CutPaste (3-way) (paper)")
            getters.append(lambda c, g, s=s: tables.format_paper(
                (s["paper"]["ensemble_averages"] if g else s["paper"]["ensemble"]).get(c)))
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    blank = " |" * (len(header) - 1)

    def row(label: str, key: str, group: bool) -> str:
        return f"| {label} | " + " | ".join(get(key, group) for get in getters) + " |"

    for group, cats in tables.group_blocks(kinds, kinds):
        lines.append(f"| *{group}* |{blank}")
        lines += [row(tables.display_name(c), c, False) for c in cats]
        lines.append(row(f"**{group} average**", group, True))
    lines.append(row("**average**", "all", True))
    return "\n".join(lines) + "\n"


def sweep_table(settings: Sequence[Mapping]) -> str:
    """Tables 7 / 8 layout: one column per swept value, rows texture / object / all, ours above
    the paper's, then with several seeds the s.e. over seeds of our average itself."""
    header = ["", *[f"{s['flag']}={s['value']}" + ("" if s["task"] == "3way" else f" ({s['task']})")
                    for s in settings]]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * len(settings)]
    for group in GROUPS:
        lines.append(f"| {group} (ours) | " + " | ".join(_ours(s["averages"].get(group))
                                                         for s in settings) + " |")
        lines.append(f"| {group} (paper) | " + " | ".join(
            tables.format_paper(s["paper"]["averages"].get(group)) for s in settings) + " |")
        if any(_several_seeds(s) for s in settings):
            lines.append(f"| {group}: {SE_OF_AVERAGE} (ours) | " + " | ".join(
                _se_of_average(s["averages"].get(group)) for s in settings) + " |")
    return "\n".join(lines) + "\n"


def markdown(summary: Mapping) -> str:
    """The whole results.md of an experiment summary (see :func:`write`)."""
    settings, kinds, seeds = summary["settings"], summary["kinds"], summary["seeds"]
    parts = [f"## Experiment: image AUROC (%) over seeds {', '.join(map(str, seeds))}", "",
             f"Averaging: {AVERAGING}.", ""]
    if summary["sweep"]:
        sweep = summary["sweep"]
        parts += [f"### Sweep of --{sweep['flag']} (layout of the paper's Tables 7 and 8)", "",
                  sweep_table(settings), "### Per category", "",
                  table1(settings, kinds, with_paper=False)]
    else:
        parts += ["### Per category (layout of the paper's Table 1)", "", table1(settings, kinds)]
    notes = [f"- {s['name']}, ensemble, {c}: {why}" for s in settings if s["ensemble"]
             for c, why in s["ensemble"]["unavailable"].items()]
    notes += [f"- {s['name']}: {c} has {s['per_category'][c]['n']} of {len(s['runs'])} seeds "
              "finished" for s in settings for c in s["per_category"]
              if s["per_category"][c]["n"] < len(s["runs"])]
    notes += [f"- ⚠ {s['name']}, seed {r['seed']}, {r['category']}: proxy task "
              f"{learning.status(r)} ({learning.figures(r)}); its AUROC does not measure the "
              "method"
              for s in settings for r in s.get("not_learned", [])]
    if notes:
        parts += ["Notes:", "", *notes, ""]
    failed = [(s["name"], f) for s in settings for f in s.get("failed", [])]
    if failed:
        parts += ["### Failed runs", "",
                  f"{len(failed)} (setting, seed, category) failed; each run's "
                  "`<category>/failed.json` has the traceback. Running the same command again "
                  "tries them again.", "",
                  "| Setting | Seed | Category | Stage | Error |", "| --- | ---: | --- | --- | --- |",
                  *(f"| {name} | {f['seed']} | {f['category']} | {f['stage']} | "
                    + f"{f['error']}: {f['message']}".replace("|", "/") + " |"
                    for name, f in failed), ""]
    parts.append("Paper numbers: CutPaste (Li et al., CVPR 2021), 5 seeds on MVTec AD; \"—\" where "
                 "the paper has no number for this setting or these categories.")
    return "\n".join(parts) + "\n"


def write(experiment_dir: str, settings: Sequence[Mapping], seeds: Sequence[int],
          sweep: Optional[Mapping] = None) -> str:
    """Writes ``results.json`` and ``results.md`` (atomically) for setting summaries from
    :func:`cutpaste_tf.analysis.experiment.summarize_setting` (each with its "name"); returns the
    Markdown."""
    kinds: dict[str, str] = {}
    for s in settings:
        kinds.update(s["kinds"])
    settings = [{**s, "paper": paper_numbers(s, kinds)} for s in settings]
    summary = {"seeds": list(seeds), "sweep": sweep, "kinds": kinds, "averaging": AVERAGING,
               "settings": settings}
    text = markdown(summary)
    files.write_json(os.path.join(experiment_dir, rundir.RESULTS_FILE), summary)
    files.write_text(os.path.join(experiment_dir, rundir.RESULTS_TABLE), text)
    return text
