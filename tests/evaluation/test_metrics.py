"""Tests for cutpaste_tf.evaluation.metrics and the transcribed paper numbers in cutpaste_tf.reporting.paper."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from helpers import paper_text

from cutpaste_tf.evaluation import metrics
from cutpaste_tf.reporting import paper

# --- auroc -----------------------------------------------------------------------------------


def test_auroc_hand_made_cases():
    assert metrics.auroc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert metrics.auroc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert metrics.auroc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    # One of four positive/negative pairs is mis-ordered: 3/4.
    assert metrics.auroc([0, 0, 1, 1], [0.1, 0.6, 0.5, 0.9]) == pytest.approx(0.75)
    assert metrics.auroc(np.array([False, True]), np.array([1.0, 2.0])) == 1.0


def test_auroc_errors():
    with pytest.raises(ValueError, match="only normal"):
        metrics.auroc([0, 0, 0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="only anomalous"):
        metrics.auroc([1, 1], [1.0, 2.0])
    with pytest.raises(ValueError, match="3 labels but 2 scores"):
        metrics.auroc([0, 1, 1], [1.0, 2.0])
    with pytest.raises(ValueError, match="1 of 3 scores are NaN"):
        metrics.auroc([0, 1, 1], [1.0, float("nan"), 2.0])
    with pytest.raises(ValueError, match="0 .normal. or 1"):
        metrics.auroc([0, 2], [1.0, 2.0])


# --- mean_and_stderr / summarize ----------------------------------------------------------------


def test_mean_and_stderr():
    mean, se = metrics.mean_and_stderr([1.0, 2.0, 3.0, 4.0, 5.0])
    assert mean == pytest.approx(3.0)
    # Sample std (ddof=1) of 1..5 is sqrt(2.5); se = sqrt(2.5)/sqrt(5) = sqrt(0.5).
    assert se == pytest.approx(math.sqrt(0.5))
    assert metrics.mean_and_stderr([0.7]) == (0.7, 0.0)
    with pytest.raises(ValueError):
        metrics.mean_and_stderr([])


def test_summarize_averages_means_and_stderrs():
    per_category = {
        "carpet": [0.90, 0.92, 0.94],  # mean 0.92, sample std 0.02, se 0.02 / sqrt(3)
        "grid": 0.80,
        "bottle": [1.0, 0.98],
        "my_part": [0.6, 0.7, 0.8, 0.9],
    }
    kinds = {"carpet": "texture", "grid": "texture", "bottle": "object", "my_part": "object"}
    s = metrics.summarize(per_category, kinds)
    pc = s["per_category"]
    expected = {c: metrics.mean_and_stderr(np.atleast_1d(v)) for c, v in per_category.items()}
    for c in per_category:
        assert pc[c] == pytest.approx(expected[c])
    assert pc["carpet"][1] == pytest.approx(0.02 / math.sqrt(3))
    assert s["num_values"] == {"carpet": 3, "grid": 1, "bottle": 2, "my_part": 4}
    av = s["averages"]
    assert av["texture"] == pytest.approx(((0.92 + 0.80) / 2, (0.02 / math.sqrt(3) + 0.0) / 2))
    assert av["object"][0] == pytest.approx((0.99 + 0.75) / 2)
    assert av["object"][1] == pytest.approx((expected["bottle"][1] + expected["my_part"][1]) / 2)
    # "all" averages over the four categories, not over the two group averages.
    assert av["all"][0] == pytest.approx((0.92 + 0.80 + 0.99 + 0.75) / 4)
    assert av["all"][1] == pytest.approx(np.mean([e[1] for e in expected.values()]))


def test_summarize_only_present_groups_and_errors():
    s = metrics.summarize({"bottle": 0.9})  # default kinds: the MVTec grouping
    assert set(s["averages"]) == {"object", "all"}
    with pytest.raises(ValueError, match="no kind given for category 'foo'"):
        metrics.summarize({"foo": 0.9}, {"bar": "texture"})
    with pytest.raises(ValueError, match="expected one of"):
        metrics.summarize({"foo": 0.9}, {"foo": "animal"})


# --- markdown_table -----------------------------------------------------------------------------


def _row(md: str, name: str) -> list[str]:
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == name:
            return cells
    raise AssertionError(f"no row {name!r} in\n{md}")


def test_markdown_table_layout_and_paper_column():
    per_category = {
        "bottle": [0.97, 0.99],
        "metal_nut": 0.951,
        "carpet": [0.9, 0.92, 0.94],
        "widget": 0.5,
    }
    kinds = {**paper.MVTEC_KINDS, "widget": "object"}
    md = metrics.markdown_table(per_category, kinds, "3way", title="Image AUROC")
    assert md.startswith("### Image AUROC")
    assert "Paper CutPaste (3-way)" in md
    assert _row(md, "bottle") == ["bottle", "98.0 ± 1.0", "98.3 ± 0.5"]
    assert _row(md, "metal nut") == ["metal nut", "95.1", "99.3 ± 0.2"]
    assert _row(md, "widget") == ["widget", "50.0", "—"]
    assert _row(md, "carpet")[2] == "93.1 ± 1.1"
    # Partial blocks: no paper average beside ours (they would average different categories).
    assert _row(md, "**texture average**")[2] == "—"
    assert _row(md, "**average**")[2] == "—"
    lines = [ln.split("|")[1].strip() for ln in md.splitlines() if ln.startswith("| ")]
    order = [x for x in lines if x and x not in ("Category", "---")]
    assert order == [
        "*texture*", "carpet", "**texture average**",
        "*object*", "bottle", "metal nut", "widget", "**object average**",
        "**average**",
    ]


def test_markdown_table_full_mvtec_shows_paper_averages_and_skips_empty_blocks():
    full = {c: 0.9 for c in paper.MVTEC_CATEGORIES}
    md = metrics.markdown_table(full, paper.MVTEC_KINDS, "cutpaste")
    assert _row(md, "**texture average**") == ["**texture average**", "90.0", "91.7 ± 0.7"]
    assert _row(md, "**object average**")[2] == "90.5 ± 0.6"
    assert _row(md, "**average**")[2] == "90.9 ± 0.7"
    assert _row(md, "carpet")[2] == "67.9 ± 1.8"
    ens = metrics.markdown_table(full, None, "ensemble")
    assert _row(ens, "grid")[2] == "100.0" and _row(ens, "**average**")[2] == "96.1"

    objects_only = metrics.markdown_table({"screw": [0.8, 0.9]}, None, "pixel")
    assert "texture" not in objects_only
    assert _row(objects_only, "screw") == ["screw", "85.0 ± 5.0", "96.7 ± 0.1"]


def test_markdown_table_errors():
    with pytest.raises(ValueError, match="choices"):
        metrics.markdown_table({"bottle": 0.9}, None, "mixup")
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        metrics.markdown_table({"bottle": 98.3}, None, "3way")


# --- paper.py transcription ---------------------------------------------------------------------


def test_paper_spot_checks():
    assert paper.TABLE1["3way"]["screw"] == (86.3, 1.0)
    assert paper.TABLE1["cutpaste"]["carpet"] == (67.9, 1.8)
    assert paper.TABLE1["3way"]["bottle"] == (98.3, 0.5)
    assert paper.TABLE1["scar"]["leather"] == (100.0, 0.0)
    assert paper.TABLE1["rotation"]["grid"] == (60.5, 7.0)
    assert paper.TABLE1["scar_cutout"]["screw"] == (11.3, 2.2)
    assert paper.TABLE1["cutout"]["screw"] == (17.6, 4.4)
    assert paper.TABLE1["ensemble"]["metal_nut"] == 99.9
    assert paper.TABLE1_AVERAGES["3way"]["all"] == (95.2, 0.6)
    assert paper.TABLE1_AVERAGES["cutpaste"]["all"] == (90.9, 0.7)
    assert paper.TABLE1_AVERAGES["scar"]["all"] == (93.5, 0.8)
    assert paper.TABLE1_AVERAGES["ensemble"]["all"] == 96.1
    assert paper.TABLE2_PIXEL["tile"] == (90.5, 0.2)
    assert paper.TABLE2_PIXEL_AVERAGES["all"] == (96.0, 0.1)


def test_paper_tables_complete_and_in_range():
    assert len(paper.MVTEC_CATEGORIES) == 15 and len(set(paper.MVTEC_CATEGORIES)) == 15
    assert paper.MVTEC_TEXTURES == ("carpet", "grid", "leather", "tile", "wood")
    assert "metal_nut" in paper.MVTEC_OBJECTS
    for task, table in list(paper.TABLE1.items()) + [("pixel", paper.TABLE2_PIXEL)]:
        assert set(table) == set(paper.MVTEC_CATEGORIES), task
        for cat, value in table.items():
            mean, se = value if isinstance(value, tuple) else (value, 0.0)
            assert 0.0 <= mean <= 100.0 and 0.0 <= se <= 100.0, (task, cat, value)


def test_union_has_only_table5_averages():
    cats, avgs = paper.paper_results("union")
    assert cats == {}
    assert avgs == {"texture": (97.3, 0.3), "object": (92.8, 0.5), "all": (94.3, 0.5)}
    # The overall average weighs 5 texture and 10 object categories.
    assert abs((5 * avgs["texture"][0] + 10 * avgs["object"][0]) / 15 - avgs["all"][0]) <= 0.05


@pytest.mark.parametrize("task", paper.TABLE1_TASKS + ("pixel",))
def test_paper_averages_consistent_with_rows(task):
    """The printed averages should equal the average of the printed per-category numbers (±0.1)."""
    cats, avgs = paper.paper_results(task)
    groups = {"texture": paper.MVTEC_TEXTURES, "object": paper.MVTEC_OBJECTS, "all": paper.MVTEC_CATEGORIES}
    for group, members in groups.items():
        vals = [cats[c] if isinstance(cats[c], tuple) else (cats[c], 0.0) for c in members]
        printed = avgs[group] if isinstance(avgs[group], tuple) else (avgs[group], 0.0)
        assert abs(np.mean([v[0] for v in vals]) - printed[0]) <= 0.1 + 1e-9, (task, group)
        assert abs(np.mean([v[1] for v in vals]) - printed[1]) <= 0.1 + 1e-9, (task, group)


def _parse_block(lines: list[str]) -> tuple[dict, list]:
    """Category rows and average rows of a table block: name -> (pairs, plain numbers)."""
    pm = re.compile(r"(\d+(?:\.\d+)?)\s*±\s*(\d+(?:\.\d+)?)")
    rows, averages = {}, []
    names = {c.replace("_", " ") for c in paper.MVTEC_CATEGORIES} | {"average"}
    for line in lines:
        m = re.match(r"([a-z ]+?)\s+\d", line)
        if not m or m.group(1) not in names:
            continue
        rest = line[len(m.group(1)):]
        pairs = [(float(a), float(b)) for a, b in pm.findall(rest)]
        plain = [float(x) for x in pm.sub(" ", rest).split()]
        if m.group(1) == "average":
            averages.append((pairs, plain))
        else:
            rows[m.group(1).replace(" ", "_")] = (pairs, plain)
    return rows, averages


def test_paper_numbers_match_paper_text():
    text = paper_text()
    lines = text.splitlines()
    start1 = next(i for i, ln in enumerate(lines) if ln.strip().startswith("Table 1: Anomaly detection"))
    start2 = next(i for i, ln in enumerate(lines) if ln.strip().startswith("Table 2: Pixel-wise"))
    start3 = next(i for i, ln in enumerate(lines) if ln.strip().startswith("Table 3:"))

    rows, avgs = _parse_block(lines[start1:start1 + 40])
    assert set(rows) == set(paper.MVTEC_CATEGORIES) and len(avgs) == 3
    for cat, (pairs, plain) in rows.items():
        # plain = DOCC, U-Student, P-SVDD, Ensemble; pairs = the six proxy-task columns.
        assert len(pairs) == 6 and len(plain) == 4, cat
        got = [paper.TABLE1[t][cat] for t in paper.TABLE1_TASKS]
        assert got == pairs + [plain[3]], cat
    for group, (pairs, plain) in zip(("texture", "object", "all"), avgs):
        got = [paper.TABLE1_AVERAGES[t][group] for t in paper.TABLE1_TASKS]
        assert got == pairs + [plain[3]], group

    rows2, avgs2 = _parse_block(lines[start2:start3])
    assert set(rows2) == set(paper.MVTEC_CATEGORIES) and len(avgs2) == 3
    for cat, (pairs, _) in rows2.items():
        assert paper.TABLE2_PIXEL[cat] == pairs[0], cat
    for group, (pairs, _) in zip(("texture", "object", "all"), avgs2):
        assert paper.TABLE2_PIXEL_AVERAGES[group] == pairs[0], group


def test_table4_numbers_match_paper_text_and_table1():
    text = paper_text()
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.strip().startswith("Table 4:"))
    pm = re.compile(r"(\d+(?:\.\d+)?)\s*±\s*(\d+(?:\.\d+)?)")
    printed = {}
    for line in lines[start:start + 15]:
        m = re.match(r"(texture|object|all)\s+\d", line.strip())
        if m:
            printed[m.group(1)] = [(float(a), float(b)) for a, b in pm.findall(line)]
    assert set(printed) == {"texture", "object", "all"}
    for group, pairs in printed.items():
        assert pairs == [paper.TABLE4_AVERAGES[t][group] for t in paper.TABLE4_TASKS], group
    for task in paper.TABLE4_TASKS:
        avgs = paper.TABLE4_AVERAGES[task]
        # The overall average weighs 5 texture and 10 object categories.
        assert abs((5 * avgs["texture"][0] + 10 * avgs["object"][0]) / 15 - avgs["all"][0]) <= 0.05
        cats, got = paper.paper_results(task)
        if task in paper.TABLE1:  # Cutout and CutPaste are Table 1's columns again
            assert got == paper.TABLE1_AVERAGES[task] and len(cats) == 15
            for group in ("texture", "object"):
                assert avgs[group] == paper.TABLE1_AVERAGES[task][group], (task, group)
            assert avgs["all"][0] == paper.TABLE1_AVERAGES[task]["all"][0], task
        else:
            assert cats == {} and got == avgs and task in paper.PAPER_TASKS
            assert task in paper.TASK_LABELS
