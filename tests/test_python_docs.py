"""docs/python.md runs as the page shows it: every Python block, in order, in one namespace,
from a folder that holds the repository's configs/ and testdata/ as its root does."""

from __future__ import annotations

import json
import re

from helpers import ROOT

PAGE = ROOT / "docs" / "python.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.M | re.S)


def python_blocks(text: str) -> list[str]:
    """The code of each fenced ```python block of a Markdown page, in order."""
    return _BLOCK.findall(text)


def test_python_blocks_are_found():
    assert python_blocks("a\n```python\nx = 1\n```\n```bash\nls\n```\n```python\ny\n```\n") == [
        "x = 1\n", "y\n"]


def test_the_python_page_runs(tmp_path, monkeypatch, capsys):
    for name in ("configs", "testdata"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(PAGE.read_text(encoding="utf-8"))
    assert len(blocks) >= 5
    namespace: dict = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{PAGE.name}, Python block {i + 1}", "exec"), namespace)
    out = capsys.readouterr().out
    # Trained and exported as launch.train would have: results, a SavedModel, a report.
    results = json.loads((tmp_path / "runs" / "washer" / "results.json").read_text())
    assert 0.0 <= results["categories"]["washer"]["auroc"] <= 1.0
    assert namespace["result"].exports["washer"] == "runs/washer/export/washer/1"
    flags_txt = (tmp_path / "runs" / "washer" / "flags.txt").read_text()
    assert "--image_size=32\n" in flags_txt and "--category=washer\n" in flags_txt
    assert "area_ratio=0.2: area_ratio needs 2 comma-separated values" in out
    assert not (tmp_path / "runs" / "bad").exists()  # refused before anything was written
    assert namespace["lines"][-1] == "Report: runs/washer/report.html"
    assert any(line.startswith("[washer] density fit on ") for line in namespace["lines"])
    # Scored: every test image of washer, with the SavedModel's threshold.
    scores = namespace["scores"]
    assert len(scores) == len(list((ROOT / "testdata" / "washer" / "test").rglob("*.png")))
    assert scores.failed == {} and scores.anomaly_maps is None
    assert (scores.is_anomaly == (scores.scores > scores.threshold)).all()
    assert namespace["heat"].shape == (48, 48)
    assert (tmp_path / "heatmap.png").stat().st_size > 1000
