"""Result tables in Markdown, laid out like the paper's, our numbers beside its numbers
(:mod:`cutpaste_tf.reporting.paper`):

- :func:`markdown_table`: image AUROC per category (Table 1; Table 2's column for "pixel");
- :func:`localization_table`: pixel AUROC and AU-PRO per category (Table 2);
- :func:`table3_markdown`: EfficientNet-B4 features, pretrained or fine-tuned (Table 3).

The experiment tables (seeds, ensembles, sweeps) are in
:mod:`cutpaste_tf.reporting.experiment_tables`. Our results come in as AUROC fractions in
[0, 1] (what :func:`cutpaste_tf.evaluation.metrics.auroc` returns) and are printed as
percentages with one decimal. A paper average is shown only when our block holds exactly the
paper's categories of that group, since otherwise the two numbers average over different sets;
"—" marks a missing number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from cutpaste_tf.data import mvtec
from cutpaste_tf.evaluation import metrics
from cutpaste_tf.evaluation.metrics import KIND_GROUPS, MeanSe
from cutpaste_tf.reporting import paper

# The paper's categories of each group: where ours are exactly these, its average is shown.
PAPER_SETS: dict[str, tuple[str, ...]] = {
    "texture": mvtec.MVTEC_TEXTURES, "object": mvtec.MVTEC_OBJECTS, "all": mvtec.MVTEC_CATEGORIES}
# Our words for Table 3's columns (feature, stage).
TABLE3_LABELS = {"pool": "Pool", "level7": "Level-7", "pretrain": "Pretrain",
                 "finetune": "Finetune"}


def display_name(category: str) -> str:
    """A category name as the paper prints it ("metal_nut" -> "metal nut")."""
    return category.replace("_", " ")


def format_ours(mean_se: MeanSe) -> str:
    """Our AUROC (a fraction) as a percentage with one decimal, "mean ± se" when it has a
    standard error (several seeds; :func:`cutpaste_tf.evaluation.metrics.mean_and_stderr`)."""
    mean, se = mean_se
    return f"{100 * mean:.1f}" if se is None else f"{100 * mean:.1f} ± {100 * se:.1f}"


def format_paper(value: MeanSe | list[float] | float | None) -> str:
    """A paper number (already in percent; one value or a (mean, se) pair), or an em dash
    when the paper has none."""
    if value is None:
        return "—"
    if isinstance(value, (tuple, list)):
        return f"{value[0]:.1f} ± {value[1]:.1f}"
    return f"{value:.1f}"


def order_categories(categories: Sequence[str]) -> list[str]:
    """MVTec categories in the paper's order first, then any others in the order given."""
    known = [c for c in mvtec.MVTEC_CATEGORIES if c in categories]
    return known + [c for c in categories if c not in mvtec.MVTEC_KINDS]


def group_blocks(categories: Iterable[str], kinds: Mapping[str, str]
                 ) -> list[tuple[str, list[str]]]:
    """(group, its categories in :func:`order_categories` order) for "texture" then "object",
    leaving out a group without categories: the blocks of every table here."""
    categories = list(categories)
    blocks = [(g, order_categories([c for c in categories if kinds[c] == g]))
              for g in KIND_GROUPS]
    return [(g, cats) for g, cats in blocks if cats]


def same_as_paper(categories: Iterable[str], group: str) -> bool:
    """Whether ``categories`` are exactly the paper's of ``group`` (texture, object or all)."""
    return set(categories) == set(PAPER_SETS[group])


def _title(title: str | None) -> list[str]:
    return [f"### {title}", ""] if title else []


def _check_fractions(per_category: Mapping[str, float | Sequence[float]]) -> None:
    for category, result in per_category.items():
        values = metrics.as_values(result)
        if any(not (0.0 <= v <= 1.0) for v in values):
            raise ValueError(
                f"markdown_table: {category!r} has values outside [0, 1] {values}; "
                "pass AUROC fractions (the table converts to percent)"
            )


def markdown_table(
    per_category: Mapping[str, float | Sequence[float]],
    kinds: Mapping[str, str] | None,
    task: str,
    title: str | None = None,
    flagged: Sequence[str] = (),
) -> str:
    """A Markdown table laid out like the paper's Table 1, our AUROC (%) beside the paper's.

    Categories in ``flagged`` (runs whose proxy task did not learn) are marked with ⚠.

    Rows: a texture block and its average, an object block and its average, then the overall
    average; blocks without categories are left out. ``task`` picks the paper column (a key of
    ``paper.TABLE1`` or "pixel" for Table 2). ``kinds`` maps each category to "texture" or
    "object" (default: the MVTec AD grouping).
    """
    paper_cats, paper_avgs = paper.paper_results(task)
    _check_fractions(per_category)
    summary = metrics.summarize(per_category, kinds)
    kinds = mvtec.MVTEC_KINDS if kinds is None else kinds
    per_cat, averages = summary["per_category"], summary["averages"]

    def avg_row(label: str, cats: list[str], group: str) -> str:
        theirs = paper_avgs.get(group) if same_as_paper(cats, group) else None
        return f"| **{label}** | {format_ours(averages[group])} | {format_paper(theirs)} |"

    lines = _title(title) + [
        f"| Category | Ours (AUROC %) | Paper {paper.TASK_LABELS[task]} |",
        "| --- | ---: | ---: |",
    ]
    for group, cats in group_blocks(per_category, kinds):
        lines.append(f"| *{group}* | | |")
        for c in cats:
            lines.append(
                f"| {display_name(c)}{' ⚠' if c in flagged else ''} | "
                f"{format_ours(per_cat[c])} | {format_paper(paper_cats.get(c))} |"
            )
        lines.append(avg_row(f"{group} average", cats, group))
    lines.append(avg_row("average", list(per_category), "all"))
    return "\n".join(lines) + "\n"


def localization_table(pixel_aurocs: Mapping[str, float], aupros: Mapping[str, float],
                       kinds: Mapping[str, str] | None, title: str | None = None) -> str:
    """Table-2-style Markdown: our pixel AUROC beside the paper's, and our AU-PRO (0.3)."""
    kinds = mvtec.MVTEC_KINDS if kinds is None else kinds
    ours = metrics.summarize(pixel_aurocs, kinds)
    pros = metrics.summarize(aupros, kinds) if aupros else None

    def pro(key: str, group: bool = False) -> str:
        if pros is None:
            return "—"
        table = pros["averages"] if group else pros["per_category"]
        return format_ours(table[key]) if key in table else "—"

    def avg_row(label: str, group: str, cats: Iterable[str]) -> str:
        theirs = paper.TABLE2_PIXEL_AVERAGES[group] if same_as_paper(cats, group) else None
        return (f"| **{label}** | {format_ours(ours['averages'][group])} | "
                f"{format_paper(theirs)} | {pro(group, True)} |")

    lines = _title(title) + [
        "| Category | Pixel AUROC % | Paper (Table 2) | AU-PRO (FPR ≤ 0.3) % |",
        "| --- | ---: | ---: | ---: |"]
    for group, cats in group_blocks(pixel_aurocs, kinds):
        lines.append(f"| *{group}* | | | |")
        for c in cats:
            lines.append(f"| {display_name(c)} | {format_ours(ours['per_category'][c])} | "
                         f"{format_paper(paper.TABLE2_PIXEL.get(c))} | {pro(c)} |")
        lines.append(avg_row(f"{group} average", group, cats))
    lines.append(avg_row("average", "all", pixel_aurocs))
    return "\n".join(lines) + "\n"


def _table3_summaries(results: Mapping[str, dict], kinds: Mapping[str, str]) -> dict:
    """Table 3 column (feature, stage) -> :func:`metrics.summarize` of our AUROCs in it, for
    the columns that have any."""
    ours: dict[tuple[str, str], dict[str, float]] = {c: {} for c in paper.TABLE3_COLUMNS}
    for name, result in results.items():
        info = result["transfer"]
        for feature, value in info["feature_auroc"].items():
            ours[(feature, info["stage"])][name] = value
    return {c: metrics.summarize(v, kinds) for c, v in ours.items() if v}


def table3_markdown(results: Mapping[str, dict], kinds: Mapping[str, str],
                    title: str = "Image AUROC (%), EfficientNet-B4 features (Table 3)") -> str:
    """Table 3's layout (Pool / Level-7 x Pretrain / Finetune), each cell "ours / paper".

    ``results`` maps category -> its result with ``result["transfer"] = {"stage": ...,
    "feature_auroc": {"pool": a, "level7": b}}``; our cells of the other stage are "—".
    """
    columns = paper.TABLE3_COLUMNS
    summaries = _table3_summaries(results, kinds)

    def cell(column: tuple[str, str], key: str, group: str | None, cats: Iterable[str]) -> str:
        if group is None:  # a category's row
            part, theirs = "per_category", paper.TABLE3[column].get(key)
        else:
            part = "averages"
            theirs = paper.TABLE3_AVERAGES[column][group] if same_as_paper(cats, group) else None
        mine = summaries[column][part].get(key) if column in summaries else None
        return f"{'—' if mine is None else format_ours(mine)} / {format_paper(theirs)}"

    def row(label: str, key: str, group: str | None = None, cats: Iterable[str] = ()) -> str:
        return f"| {label} | " + " | ".join(cell(c, key, group, cats) for c in columns) + " |"

    header = " | ".join(f"{TABLE3_LABELS[f]} {TABLE3_LABELS[s]}" for f, s in columns)
    lines = [f"### {title}", "", "Each cell: ours / paper.", "",
             f"| Category | {header} |", "| --- |" + " ---: |" * len(columns)]
    for group, cats in group_blocks(results, kinds):
        lines.append(f"| *{group}* |" + " |" * len(columns))
        lines += [row(display_name(c), c) for c in cats]
        lines.append(row(f"**{group} average**", group, group, cats))
    lines.append(row("**average**", "all", "all", results))
    return "\n".join(lines) + "\n"
