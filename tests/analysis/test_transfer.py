"""Table 3 (EfficientNet-B4 transfer): the transcribed numbers and the results table layout."""

import re

import numpy as np
import pytest
from helpers import paper_text

from cutpaste_tf.analysis import transfer
from cutpaste_tf.config import RunConfig, TrainConfig
from cutpaste_tf.reporting import paper

GROUPS = {"texture": paper.MVTEC_TEXTURES, "object": paper.MVTEC_OBJECTS,
          "all": paper.MVTEC_CATEGORIES}


def _table3_lines() -> list[str]:
    lines = paper_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("Table 3:"))
    return lines[start:start + 50]


def test_table3_matches_the_paper_text():
    lines = _table3_lines()
    number = r"(\d+(?:\.\d+)?)"
    row = re.compile(rf"^([a-z ]+?) {number} {number}±{number} {number} {number}±{number}$")
    names = {c.replace("_", ""): c for c in paper.MVTEC_CATEGORIES}
    names.update({c.replace("_", " "): c for c in paper.MVTEC_CATEGORIES})
    rows, averages = {}, []
    for line in lines:
        m = row.match(line.strip())
        if not m:
            continue
        values = [float(v) for v in m.groups()[1:]]
        parsed = (values[0], (values[1], values[2]), values[3], (values[4], values[5]))
        if m.group(1) == "average":
            averages.append(parsed)
        else:
            rows[names[m.group(1)]] = parsed
    assert set(rows) == set(paper.MVTEC_CATEGORIES) and len(averages) == 3
    for column_index, column in enumerate(paper.TABLE3_COLUMNS):
        for cat, parsed in rows.items():
            assert paper.TABLE3[column][cat] == parsed[column_index], (column, cat)
        for group, parsed in zip(("texture", "object", "all"), averages):
            assert paper.TABLE3_AVERAGES[column][group] == parsed[column_index], (column, group)


@pytest.mark.parametrize("column", paper.TABLE3_COLUMNS)
def test_table3_averages_are_the_row_means(column):
    for group, members in GROUPS.items():
        values = [paper.TABLE3[column][c] for c in members]
        means = [v[0] if isinstance(v, tuple) else v for v in values]
        printed = paper.TABLE3_AVERAGES[column][group]
        printed = printed[0] if isinstance(printed, tuple) else printed
        assert abs(np.mean(means) - printed) <= 0.15, (column, group)


def test_stage_name_follows_the_training_steps():
    assert transfer.stage_name(RunConfig(train=TrainConfig(epochs=0))) == "pretrain"
    assert transfer.stage_name(RunConfig(train=TrainConfig(epochs=0, head_epochs=1))) == "finetune"


def test_table3_markdown_puts_ours_in_the_run_stage_columns():
    results = {c: {"transfer": {"stage": "pretrain",
                                "feature_auroc": {"pool": 0.9, "level7": 0.95}}}
               for c in paper.MVTEC_CATEGORIES}
    results["widget"] = {"transfer": {"stage": "pretrain",
                                      "feature_auroc": {"pool": 0.5, "level7": 0.6}}}
    kinds = {**paper.MVTEC_KINDS, "widget": "object"}
    md = transfer.table3_markdown({c: results[c] for c in paper.MVTEC_CATEGORIES},
                                  paper.MVTEC_KINDS)
    assert "| Category | Pool Pretrain | Pool Finetune | Level-7 Pretrain | Level-7 Finetune |" in md
    assert "| pill | 90.0 / 81.9 | — / 91.3 ± 0.2 | 95.0 / 91.0 | — / 93.3 ± 0.2 |" in md
    assert "| **average** | 90.0 / 94.5 | — / 96.6 ± 0.1 | 95.0 / 96.8 | — / 97.1 ± 0.0 |" in md
    # A category the paper lacks: no paper number, and no paper average for a different set.
    md = transfer.table3_markdown(results, kinds)
    assert "| widget | 50.0 / — | — / — | 60.0 / — | — / — |" in md
    assert "| **object average** | 86.4 / — |" in md
