"""Transfer-learning results (Sec. 4.3, Table 3): detection AUROC of an EfficientNet's pooled and
level-7 features, pretrained only or fine-tuned by CutPaste, beside the paper's numbers."""

from __future__ import annotations

import dataclasses
from typing import Mapping

import keras
import numpy as np

from cutpaste_tf.config import RunConfig
from cutpaste_tf.data import CategoryData
from cutpaste_tf.evaluation import evaluate, metrics
from cutpaste_tf.reporting import paper

# Our feature names for Table 3's "Pool" and "Level-7" columns.
TABLE3_FEATURES: dict[str, str] = {"pool": "pooled", "level7": "level7"}
_LABELS = {"pool": "Pool", "level7": "Level-7", "pretrain": "Pretrain", "finetune": "Finetune"}


def stage_name(config: RunConfig) -> str:
    """Table 3's column for a run: "pretrain" without training steps, else "finetune"."""
    return "pretrain" if config.train.total_steps == 0 else "finetune"


def feature_aurocs(model: keras.Model, data: CategoryData, config: RunConfig,
                   known: Mapping[str, float]) -> dict[str, float]:
    """Test AUROC of a GDE (``config.density``) on each Table 3 feature of ``model``, keyed
    "pool" / "level7"; ``known`` (our feature name -> AUROC) skips features already scored.

    Each density is fitted on the training images only, exactly as for the run's own feature.
    """
    out = {}
    size, batch = config.train.image_size, config.eval_batch_size
    for column, feature in TABLE3_FEATURES.items():
        if feature in known:
            out[column] = float(known[feature])
            continue
        dcfg = dataclasses.replace(config.density, feature=feature)
        train_features = evaluate.embed(model, data.train_files, size, feature, batch)
        estimator = evaluate.fit_features_checked(train_features, data, dcfg)
        scores = evaluate.score_images(model, estimator, data.test_files, size, feature, batch,
                                       category=data.name)
        out[column] = float(evaluate.evaluate(np.asarray(scores), data)["auroc"])
    return out


def table3_markdown(results: Mapping[str, dict], kinds: Mapping[str, str],
                    title: str = "Image AUROC (%), EfficientNet-B4 features (Table 3)") -> str:
    """Table 3's layout (Pool / Level-7 x Pretrain / Finetune), each cell "ours / paper".

    ``results`` maps category -> its result with ``result["transfer"] = {"stage": ...,
    "feature_auroc": {"pool": a, "level7": b}}``; our cells of the other stage are "—". A paper
    average is shown only where the block holds exactly the paper's categories of that group.
    """
    columns = paper.TABLE3_COLUMNS
    ours: dict[tuple[str, str], dict[str, float]] = {c: {} for c in columns}
    for name, result in results.items():
        info = result["transfer"]
        for feature, value in info["feature_auroc"].items():
            ours[(feature, info["stage"])][name] = value
    summaries = {c: metrics.summarize(v, kinds) for c, v in ours.items() if v}

    def cell(column, mine, theirs) -> str:
        left = "—" if mine is None else metrics.format_ours(mine, False)
        return f"{left} / {metrics.format_paper(theirs)}"

    header = " | ".join(f"{_LABELS[f]} {_LABELS[s]}" for f, s in columns)
    lines = [f"### {title}", "", "Each cell: ours / paper.", "",
             f"| Category | {header} |", "| --- |" + " ---: |" * len(columns)]

    def row(label: str, key: str, group: str | None, paper_set) -> str:
        cells = []
        for column in columns:
            if group is None:
                mine = summaries[column]["per_category"].get(key) if column in summaries else None
                theirs = paper.TABLE3[column].get(key)
            else:
                mine = summaries[column]["averages"].get(group) if column in summaries else None
                same = set(categories_of(group)) == set(paper_set)
                theirs = paper.TABLE3_AVERAGES[column][group] if same else None
            cells.append(cell(column, mine, theirs))
        return f"| {label} | " + " | ".join(cells) + " |"

    def categories_of(group: str) -> list[str]:
        return list(results) if group == "all" else [c for c in results if kinds[c] == group]

    paper_sets = {"texture": paper.MVTEC_TEXTURES, "object": paper.MVTEC_OBJECTS}
    for group in metrics.KIND_GROUPS:
        cats = metrics.order_categories(categories_of(group))
        if not cats:
            continue
        lines.append(f"| *{group}* |" + " |" * len(columns))
        lines += [row(metrics.display_name(c), c, None, ()) for c in cats]
        lines.append(row(f"**{group} average**", group, group, paper_sets[group]))
    lines.append(row("**average**", "all", "all", paper.MVTEC_CATEGORIES))
    return "\n".join(lines) + "\n"
