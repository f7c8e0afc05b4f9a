"""Every figure the README and docs quote from recorded runs matches the runs' per-seed values."""

from __future__ import annotations

import os
import shutil

import pytest
import recorded_figures as recorded
from helpers import ROOT

RECORDED = os.path.join(ROOT, "docs", "recorded_runs.json")


def test_every_quoted_figure_matches_its_runs():
    data = recorded.load(RECORDED)
    assert len(recorded.quotes(data)) >= 20
    assert recorded.missing(data, ROOT) == []


def test_a_drifted_figure_is_named(tmp_path):
    data = recorded.load(RECORDED)
    for path in {p for p, _, _ in recorded.quotes(data)}:
        os.makedirs(tmp_path / os.path.dirname(path), exist_ok=True)
        shutil.copy(os.path.join(ROOT, path), tmp_path / path)
    readme = tmp_path / "README.md"
    readme.write_text(readme.read_text().replace("0.791 ± 0.008", "0.80 ± 0.01"))
    assert recorded.missing(data, str(tmp_path)) == [
        "README.md: elpv_poly_3way_cpu.acc600 should read '0.791 ± 0.008'"]
    data["runs"]["elpv_mono_3way_cpu"]["auroc"][0] = 91.0  # a new value moves every quote of it
    assert sum("elpv_mono_3way_cpu.auroc" in line
               for line in recorded.missing(data, str(tmp_path))) == 3


def test_render_forms():
    assert recorded.render([0.889, 0.876, 0.881], "mean_se:3") == "0.882 ± 0.004"
    assert recorded.render([64.8, 67.2, 62.8], "mean:2") == "64.93"
    assert recorded.render([1, 2.5], "values:1") == "(1.0, 2.5)"
    with pytest.raises(ValueError, match="unknown form"):
        recorded.render([1.0], "median:1")
