"""launch.budget_study end to end on the shipped testdata: two tiny cells, then the tables."""

from __future__ import annotations

import json
import os

from launch import budget_study


def test_the_study_runs_its_cells_resumes_and_summarizes(run_launcher, tmp_path, capsys):
    args = [f"--study_dir={tmp_path / 'study'}", f"--data_root={tmp_path / 'data'}",
            "--study_families=testdata_washer", "--study_arms=jitter", "--study_steps=2",
            "--study_seeds=1", "--study_image_size=32"]
    assert run_launcher(budget_study, *args) == 0
    out = capsys.readouterr().out
    assert "Budget study" in out and out.count("done in") == 2
    for arm in ("cpu_choices", "jitter"):
        cell = tmp_path / "study" / "testdata_washer" / arm / "steps_2" / "seed_0"
        assert (cell / "validation.json").exists() and (cell / "results.json").exists()
        assert not (cell / "export").exists()  # the study exports nothing
    # The carved copy: a third of each defect kind moved to validation/.
    assert sorted(os.listdir(tmp_path / "data" / "testdata_val" / "washer" / "validation")) == [
        "missing", "scratch", "stain"]
    cells = json.loads((tmp_path / "study" / "budget_study.json").read_text())["cells"]
    assert {c["arm"] for c in cells} == {"cpu_choices", "jitter"}
    assert all(0 <= c["yardstick"] <= 1 and c["steps"] == 2 for c in cells)
    assert "whole-image colour jitter" in (tmp_path / "study" / "budget_study.md").read_text()
    assert (tmp_path / "study" / "budget_study.png").exists()
    # Run again: every cell is skipped.
    assert run_launcher(budget_study, *args) == 0
    assert capsys.readouterr().out.count("finished before") == 2


def test_unknown_arms_are_refused(run_launcher, tmp_path, capsys):
    code = run_launcher(budget_study, f"--study_dir={tmp_path}", f"--data_root={tmp_path}",
                        "--study_arms=hue")
    assert code == 2 and "unknown families or arms: hue" in capsys.readouterr().err
