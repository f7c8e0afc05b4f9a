"""cutpaste_tf.reporting.tables: the paper-style result tables (Tables 1, 2 and 3), our
numbers beside the paper's."""

from __future__ import annotations

import pytest

from cutpaste_tf.reporting import paper, tables

# --- markdown_table (Table 1) -----------------------------------------------------------------


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
    md = tables.markdown_table(per_category, kinds, "3way", title="Image AUROC")
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
    md = tables.markdown_table(full, paper.MVTEC_KINDS, "cutpaste")
    assert _row(md, "**texture average**") == ["**texture average**", "90.0", "91.7 ± 0.7"]
    assert _row(md, "**object average**")[2] == "90.5 ± 0.6"
    assert _row(md, "**average**")[2] == "90.9 ± 0.7"
    assert _row(md, "carpet")[2] == "67.9 ± 1.8"
    ens = tables.markdown_table(full, None, "ensemble")
    assert _row(ens, "grid")[2] == "100.0" and _row(ens, "**average**")[2] == "96.1"

    objects_only = tables.markdown_table({"screw": [0.8, 0.9]}, None, "pixel")
    assert "texture" not in objects_only
    assert _row(objects_only, "screw") == ["screw", "85.0 ± 5.0", "96.7 ± 0.1"]


def test_markdown_table_errors():
    with pytest.raises(ValueError, match="choices"):
        tables.markdown_table({"bottle": 0.9}, None, "mixup")
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        tables.markdown_table({"bottle": 98.3}, None, "3way")


# --- localization_table (Table 2) ---------------------------------------------------------------


def test_localization_table_lists_paper_numbers_for_mvtec_categories():
    table = tables.localization_table({"carpet": 0.97, "fabric": 0.95},
                                      {"carpet": 0.9, "fabric": 0.8},
                                      {"carpet": "texture", "fabric": "texture"})
    assert "| carpet | 97.0 | 98.3 ± 0.0 | 90.0 |" in table
    assert "| fabric | 95.0 | — | 80.0 |" in table
    assert "| **average** | 96.0 | — | 85.0 |" in table


# --- Table 3 (EfficientNet-B4 transfer) ---------------------------------------------------------


def test_table3_markdown_puts_ours_in_the_run_stage_columns():
    results = {c: {"transfer": {"stage": "pretrain",
                                "feature_auroc": {"pool": 0.9, "level7": 0.95}}}
               for c in paper.MVTEC_CATEGORIES}
    results["widget"] = {"transfer": {"stage": "pretrain",
                                      "feature_auroc": {"pool": 0.5, "level7": 0.6}}}
    kinds = {**paper.MVTEC_KINDS, "widget": "object"}
    md = tables.table3_markdown({c: results[c] for c in paper.MVTEC_CATEGORIES},
                                paper.MVTEC_KINDS)
    assert "| Category | Pool Pretrain | Pool Finetune | Level-7 Pretrain | Level-7 Finetune |" in md
    assert "| pill | 90.0 / 81.9 | — / 91.3 ± 0.2 | 95.0 / 91.0 | — / 93.3 ± 0.2 |" in md
    assert "| **average** | 90.0 / 94.5 | — / 96.6 ± 0.1 | 95.0 / 96.8 | — / 97.1 ± 0.0 |" in md
    # A category the paper lacks: no paper number, and no paper average for a different set.
    md = tables.table3_markdown(results, kinds)
    assert "| widget | 50.0 / — | — / — | 60.0 / — | — / — |" in md
    assert "| **object average** | 86.4 / — |" in md


# --- The shared blocks -------------------------------------------------------------------------


def test_group_blocks_order_and_paper_sets():
    kinds = {**paper.MVTEC_KINDS, "widget": "object", "alpha": "texture"}
    blocks = tables.group_blocks(["widget", "screw", "alpha", "bottle"], kinds)
    assert blocks == [("texture", ["alpha"]), ("object", ["bottle", "screw", "widget"])]
    assert tables.group_blocks(["screw"], kinds) == [("object", ["screw"])]
    assert tables.same_as_paper(reversed(paper.MVTEC_TEXTURES), "texture")
    assert not tables.same_as_paper(paper.MVTEC_TEXTURES[1:], "texture")
    assert tables.same_as_paper(paper.MVTEC_CATEGORIES, "all")
