"""The budget study: its cells' flags, the carved validation set, and the rule on made-up cells."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from helpers import ROOT

from cutpaste_tf.analysis import budget_study as study


def test_every_cell_pins_the_cpu_choices_and_changes_only_its_arm(parse_flags):
    import launch.flags  # noqa: F401  (defines the flags)
    from launch import configs

    def config(arm: str, family: str = "testdata_washer"):
        parse_flags(*study.train_args(family, arm, 2400, 1, "study", "data"))
        return configs.run_config()

    base = config(study.BASELINE)
    assert base.model.head_widths == (512,) and base.model.head_embedding == 0
    assert base.model.classifier_init == "zeros"
    assert base.train.augment.translate == 0 and base.train.augment.jitter == (0, 0, 0, 0)
    assert base.train.image_size == (64, 64) and base.train.total_steps == 2400
    assert base.train.seed == 1 and base.threshold.val_fraction == 0.2
    assert base.train.task == "3way" and base.train.batch_size == 96
    head = config("authors_head")
    assert head.model.head_widths == (512,) * 8 and head.model.head_embedding == 128
    assert head.model.classifier_init == "glorot_uniform"
    assert head.train == base.train
    jitter = config("jitter")
    assert jitter.train.augment.jitter == (0.1, 0.1, 0.1, 0) and jitter.model == base.model
    paper = config("paper")
    assert paper.train.augment.translate == 0.0625 and paper.model == head.model
    # ELPV's own flagfile nests configs/3way.flags; the budget and the arm still win.
    elpv = config("jitter", "elpv_poly")
    assert elpv.train.image_size == (64, 64) and elpv.train.total_steps == 2400
    assert elpv.train.augment.jitter == (0.1, 0.1, 0.1, 0) and elpv.model == base.model


def test_carving_moves_a_seeded_third_of_each_defect_kind_out_of_the_test_set(tmp_path):
    source = os.path.join(ROOT, "testdata", "washer")
    moved = study.carve_validation(source, str(tmp_path / "a"), seed=0)
    again = study.carve_validation(source, str(tmp_path / "b"), seed=0)
    kinds = sorted(k for k in os.listdir(os.path.join(source, "test")) if k != "good")
    assert sorted(moved) == kinds and moved == again
    for kind in kinds:
        total = len(os.listdir(os.path.join(source, "test", kind)))
        val = set(os.listdir(tmp_path / "a" / "validation" / kind))
        test = set(os.listdir(tmp_path / "a" / "test" / kind))
        assert len(val) == moved[kind] == round(total / 3) and not val & test
        assert len(val | test) == total
        assert val == set(os.listdir(tmp_path / "b" / "validation" / kind))
        masks = {m.replace("_mask", "") for m in os.listdir(tmp_path / "a" / "ground_truth" / kind)}
        assert masks == test  # masks follow the images that stay in the test set
    for folder in ("train/good", "test/good"):
        assert sorted(os.listdir(tmp_path / "a" / folder)) == sorted(
            os.listdir(os.path.join(source, folder)))
    with pytest.raises(ValueError, match="no test/<defect> folder"):
        study.carve_validation(str(tmp_path / "a" / "train"), str(tmp_path / "c"))


def _cell(study_dir, family, arm, steps, seed, yardstick, accuracy=0.8):
    model_dir = study.cell_dir(str(study_dir), family, arm, steps, seed)
    category = study.FAMILIES[family]["category"]
    os.makedirs(model_dir)
    learning = {"final_accuracy": accuracy, "final_accuracy_per_class": [accuracy] * 3,
                "quarter_accuracy": 0.5, "learned": accuracy > 0.4}
    with open(os.path.join(model_dir, "results.json"), "w") as f:
        json.dump({"categories": {category: {"auroc": 0.9, "learning": learning}}}, f)
    key = study.FAMILIES[family]["yardstick"]
    with open(os.path.join(model_dir, "validation.json"), "w") as f:
        json.dump({"categories": {category: {"auroc": {key: yardstick, "all": yardstick}}}}, f)


def _study(tmp_path, differences: dict[int, list[float]], arm="jitter"):
    """Cells of two real families: at each budget, seed k's arm differs by differences[k]."""
    rng = np.random.default_rng(0)
    for steps, diffs in differences.items():
        for family in ("elpv_poly", "mvtec_bottle"):
            for seed, d in enumerate(diffs):
                base = 0.7 + 0.05 * rng.random()
                _cell(tmp_path, family, study.BASELINE, steps, seed, base)
                _cell(tmp_path, family, arm, steps, seed, base + d)
    return study.collect(str(tmp_path))


def test_a_tie_goes_to_the_paper_and_a_clear_loss_to_the_departure(tmp_path):
    tie = _study(tmp_path / "tie", {600: [-0.03, -0.03, -0.03], 2400: [0.01, -0.02, 0.005]})
    verdict = study.decide(tie, "jitter")
    assert verdict["steps"] == 2400 and verdict["n"] == 6 and verdict["verdict"] == "paper"
    worse = _study(tmp_path / "worse", {600: [0.0, 0.01, 0.0], 2400: [-0.03, -0.025, -0.035]})
    assert study.decide(worse, "jitter")["verdict"] == "departure"
    assert study.decide(worse, "translate")["verdict"] == "undecided"
    few = _study(tmp_path / "few", {9600: [-0.05, -0.06]})  # two seeds: not yet a budget
    assert study.decide(few, "jitter")["verdict"] == "undecided"


def test_paired_differences_trend_and_table(tmp_path):
    records = _study(tmp_path, {600: [-0.04, -0.04, -0.04], 2400: [-0.02, -0.02, -0.02],
                                9600: [0.0, 0.0, 0.0]})
    by_steps = study.paired(records, "jitter")
    assert sorted(by_steps) == [600, 2400, 9600]
    assert by_steps[600]["mean"] == pytest.approx(-0.04) and by_steps[600]["n"] == 6
    line = study.trend(records, "jitter")
    assert line["slope_per_doubling"] == pytest.approx(0.01)
    assert line["at_target"] == pytest.approx(0.01 * np.log2(65536 / 9600))
    assert not line["flips"]  # 0 at 9,600 is no sign
    table = study.table_markdown(records)
    assert "whole-image colour jitter" in table and "| 600 | real families | 6 |" in table
    assert "-4.0 ± 0.0" in table and "→ **paper**" in table
    path = study.plot(records, str(tmp_path / "figure.png"))
    assert os.path.getsize(path) > 10_000
    unfinished = study.cell_dir(str(tmp_path), "elpv_poly", "jitter", 600, 7)
    os.makedirs(unfinished)  # no validation.json yet: not a record
    assert len(study.collect(str(tmp_path))) == len(records)


def test_the_study_table_in_the_docs_is_that_of_its_recorded_cells():
    """docs/learning.md (point 15) quotes the table that the recorded cells give, line for line."""
    with open(os.path.join(ROOT, "docs", "budget_study", "cells.json")) as f:
        records = json.load(f)["cells"]
    assert records and all(r["final_accuracy"] > 0.4 for r in records)  # every cell learned
    with open(os.path.join(ROOT, "docs", "learning.md"), encoding="utf-8") as f:
        doc = f.read()
    missing = [line for line in study.table_markdown(records).splitlines()
               if line.strip() and line not in doc]
    assert missing == []
    assert os.path.exists(os.path.join(ROOT, "docs", "budget_study", "figure.png"))
