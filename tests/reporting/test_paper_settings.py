"""The "settings that differ from the paper" table: the main config is the paper, the CPU-budget
configs name what they change, and every run's results and report carry the table."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cutpaste_tf.config import AugmentConfig, ModelConfig, RunConfig, TrainConfig
from cutpaste_tf.reporting import paper_settings as ps


def _config(parse_flags, *args) -> RunConfig:
    import launch.flags  # noqa: F401  (defines the flags)
    from launch import configs
    parse_flags(*args, "--data_dir=testdata")
    return configs.run_config()


def _names(config: RunConfig) -> set[str]:
    return {row["setting"] for row in ps.differences(config)}


def test_the_main_config_is_the_paper_as_written(parse_flags):
    config = _config(parse_flags, "--flagfile=configs/3way.flags")
    assert ps.differences(config) == []
    assert "None: this run uses the paper's stated settings" in ps.markdown([])
    # The authors' head, their classifier, the paper's pre-augmentation, as the table reads it.
    values = {s.name: s.value(config) for s in ps.SETTINGS}
    assert values["projection head"] == "8 x 512 + linear 128"
    assert values["random translation"] == "up to 0.0625 of the image"
    assert values["whole-image colour jitter"].startswith("brightness, contrast, saturation")


def test_the_cpu_budget_config_names_each_change(parse_flags):
    config = _config(parse_flags, "--flagfile=configs/3way_cpu.flags")
    # The paper's pre-augmentation stays (docs/learning.md, point 16): no translation or jitter
    # row; the density is fitted on jittered copies too (the same point).
    assert _names(config) == {"image size", "training steps", "projection head",
                              "classifier initialisation", "density fit"}
    rows = {r["setting"]: r for r in ps.differences(config)}
    assert rows["projection head"]["source"] == "open"
    assert rows["image size"]["run"] == "128 x 128" and rows["image size"]["paper"] == "256 x 256"
    table = ps.markdown(ps.differences(config))
    assert table.startswith(f"### {ps.TITLE}") and table.count("\n| ") == 7  # header, rule, 5 rows
    assert "projection head (open: the authors' code) | an MLP" in table
    assert "| 1 x 512 |" in table and "`docs/learning.md`" in table


def test_each_setting_is_caught_alone():
    paper = RunConfig(model=ModelConfig(head_widths=(512,) * 8, head_embedding=128,
                                        classifier_init="glorot_uniform"),
                      train=TrainConfig(augment=AugmentConfig(translate=0.0625,
                                                              jitter=(0.1, 0.1, 0.1, 0))))
    assert ps.differences(paper) == []
    changed = {
        "schedule": dataclasses.replace(paper, train=dataclasses.replace(paper.train,
                                                                         warmup_steps=50)),
        "patch colour jitter": dataclasses.replace(paper, train=dataclasses.replace(
            paper.train, augment=dataclasses.replace(paper.train.augment, patch_jitter=0.2))),
        "training images": dataclasses.replace(paper, threshold=dataclasses.replace(
            paper.threshold, val_fraction=0.2)),
        "projection head": dataclasses.replace(paper, model=dataclasses.replace(
            paper.model, head_init="torch")),
    }
    for name, config in changed.items():
        assert _names(config) == {name}, name


@pytest.mark.usefixtures("tiny_run")
def test_every_run_carries_the_table(tiny_run):
    results = json.loads((tiny_run.model_dir / "results.json").read_text())
    rows = {r["setting"] for r in results["paper_differences"]}
    assert {"image size", "projection head", "training images"} <= rows
    assert ps.TITLE in (tiny_run.model_dir / "results.md").read_text()
    report = tiny_run.model_dir / "report.html"
    if report.exists():  # written when matplotlib is installed, as in the test extra
        assert ps.TITLE in report.read_text()
    else:
        pytest.fail("the tiny run wrote no report.html")
