"""The published numbers in cutpaste_tf.reporting.paper: complete, consistent with themselves, and
equal to the paper's tables as printed (their lines are kept in tests/reporting/paper_tables.txt,
so these checks run wherever the tests do)."""

from __future__ import annotations

import functools
import pathlib
import re

import numpy as np
import pytest

from cutpaste_tf.reporting import paper

TABLES = pathlib.Path(__file__).resolve().parent / "paper_tables.txt"
GROUPS = {"texture": paper.MVTEC_TEXTURES, "object": paper.MVTEC_OBJECTS,
          "all": paper.MVTEC_CATEGORIES}
PLUS_MINUS = re.compile(r"(\d+(?:\.\d+)?)\s*±\s*(\d+(?:\.\d+)?)")
SECTION_START = re.compile(r"(Table \d+):|(\d+\.\d+)\. ")


@functools.lru_cache(maxsize=None)
def _sections() -> dict[str, tuple[str, ...]]:
    """The lines of paper_tables.txt by section ("Table 1", ..., "5.4"), each section running
    from its caption's first line to the next caption; comment lines are skipped."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in TABLES.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        start = SECTION_START.match(line.strip())
        if start:
            current = sections.setdefault(start.group(1) or start.group(2), [])
        elif current is None:
            raise ValueError(f"{TABLES}: line before the first caption: {line!r}")
        current.append(line)
    return {name: tuple(lines) for name, lines in sections.items()}


def section(name: str) -> list[str]:
    """One section of the paper's table lines, caption first."""
    return list(_sections()[name])


def test_the_table_lines_have_every_section_the_checks_read():
    assert set(_sections()) == {"Table 1", "Table 2", "Table 3", "Table 4", "Table 6", "5.4",
                                "Table 7", "Table 8"}
    assert section("Table 6")[1] == "Dataset MNIST Square Ellipse Heart Square† Ellipse† Heart† Avg"


# --- the transcription on its own ------------------------------------------------------------


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
    for group, members in GROUPS.items():
        vals = [cats[c] if isinstance(cats[c], tuple) else (cats[c], 0.0) for c in members]
        printed = avgs[group] if isinstance(avgs[group], tuple) else (avgs[group], 0.0)
        assert abs(np.mean([v[0] for v in vals]) - printed[0]) <= 0.1 + 1e-9, (task, group)
        assert abs(np.mean([v[1] for v in vals]) - printed[1]) <= 0.1 + 1e-9, (task, group)


@pytest.mark.parametrize("column", paper.TABLE3_COLUMNS)
def test_table3_averages_are_the_row_means(column):
    for group, members in GROUPS.items():
        values = [paper.TABLE3[column][c] for c in members]
        means = [v[0] if isinstance(v, tuple) else v for v in values]
        printed = paper.TABLE3_AVERAGES[column][group]
        printed = printed[0] if isinstance(printed, tuple) else printed
        assert abs(np.mean(means) - printed) <= 0.15, (column, group)


# --- the transcription against the paper's lines ---------------------------------------------


def _parse_block(lines: list[str]) -> tuple[dict, list]:
    """Category rows and average rows of a table block: name -> (pairs, plain numbers)."""
    rows, averages = {}, []
    names = {c.replace("_", " ") for c in paper.MVTEC_CATEGORIES} | {"average"}
    for line in lines:
        m = re.match(r"([a-z ]+?)\s+\d", line)
        if not m or m.group(1) not in names:
            continue
        rest = line[len(m.group(1)):]
        pairs = [(float(a), float(b)) for a, b in PLUS_MINUS.findall(rest)]
        plain = [float(x) for x in PLUS_MINUS.sub(" ", rest).split()]
        if m.group(1) == "average":
            averages.append((pairs, plain))
        else:
            rows[m.group(1).replace(" ", "_")] = (pairs, plain)
    return rows, averages


def test_table1_matches_the_paper():
    rows, avgs = _parse_block(section("Table 1"))
    assert set(rows) == set(paper.MVTEC_CATEGORIES) and len(avgs) == 3
    for cat, (pairs, plain) in rows.items():
        # plain = DOCC, U-Student, P-SVDD, Ensemble; pairs = the six proxy-task columns.
        assert len(pairs) == 6 and len(plain) == 4, cat
        got = [paper.TABLE1[t][cat] for t in paper.TABLE1_TASKS]
        assert got == pairs + [plain[3]], cat
    for group, (pairs, plain) in zip(("texture", "object", "all"), avgs):
        got = [paper.TABLE1_AVERAGES[t][group] for t in paper.TABLE1_TASKS]
        assert got == pairs + [plain[3]], group


def test_table2_matches_the_paper():
    rows, avgs = _parse_block(section("Table 2"))
    assert set(rows) == set(paper.MVTEC_CATEGORIES) and len(avgs) == 3
    for cat, (pairs, _) in rows.items():
        assert paper.TABLE2_PIXEL[cat] == pairs[0], cat
    for group, (pairs, _) in zip(("texture", "object", "all"), avgs):
        assert paper.TABLE2_PIXEL_AVERAGES[group] == pairs[0], group


def test_table3_matches_the_paper():
    number = r"(\d+(?:\.\d+)?)"
    row = re.compile(rf"^([a-z ]+?) {number} {number}±{number} {number} {number}±{number}$")
    names = {c.replace("_", ""): c for c in paper.MVTEC_CATEGORIES}
    names.update({c.replace("_", " "): c for c in paper.MVTEC_CATEGORIES})
    rows, averages = {}, []
    for line in section("Table 3"):
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


def test_table4_matches_the_paper_and_table1():
    printed = {}
    for line in section("Table 4"):
        m = re.match(r"(texture|object|all)\s+\d", line.strip())
        if m:
            printed[m.group(1)] = [(float(a), float(b)) for a, b in PLUS_MINUS.findall(line)]
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


def test_table6_matches_the_paper():
    # Table 6's "Avg" is the mean of its seven columns.
    assert abs(np.mean([paper.TABLE6["cutpaste"][k] for k in paper.TABLE6_KINDS]) - 98.3) < 0.06
    lines = section("Table 6")
    rows = lines[lines.index("Dataset MNIST Square Ellipse Heart Square† Ellipse† Heart† Avg") + 1:]
    assert [line.split()[0] for line in rows] == ["Cutout", "CutPaste"]
    for method, line in zip(("cutout", "cutpaste"), rows):
        values = [float(v) for v in line.split()[1:]]
        assert values == list(paper.TABLE6[method].values()), method


def test_tables_7_and_8_match_the_paper():
    rows = [re.findall(r"(\d+\.\d)±(\d\.\d)", line)
            for line in section("Table 7") + section("Table 8")
            if line.startswith(("texture ", "object ", "all "))]
    assert len(rows) == 6
    columns = [("learning_rate", v) for v in (0.1, 0.03, 0.01, 0.003)] + [
        ("epochs", v) for v in (128, 192, 256, 320, 384)]
    columns8 = [("patch_jitter", v) for v in (0.0, 0.1, 0.2, 0.3)] + [
        ("area_ratio", v) for v in (0.1, 0.15, 0.2, 0.3)]
    for table_rows, cols in ((rows[:3], columns), (rows[3:], columns8)):
        for group, row in zip(("texture", "object", "all"), table_rows):
            assert len(row) == len(cols)
            for (flag, value), (mean, se) in zip(cols, row):
                assert paper.ablation_result(flag, value)[group] == (float(mean), float(se))
    assert paper.ablation_result("learning_rate", 0.5) is None


def test_cifar10_numbers_match_section_5_4():
    text = " ".join(" ".join(section("5.4")).split())
    assert "Cutout results in 60.2 AUC" in text
    assert "CutPaste achieves 69.4 AUC" in text
    assert "rotation prediction (91.3 AUC)" in text
    assert paper.CIFAR10_MEAN_AUROC == {"cutout": 60.2, "cutpaste": 69.4, "rotation": 91.3}
