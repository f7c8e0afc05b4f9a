"""python -m launch.benchmark: the augmentation section on the shipped testdata at a tiny size
writes every figure it prints. Keys and signs only, no timing assertions."""

import json

from helpers import run_module


def test_augment_section_writes_its_figures(tmp_path):
    out = tmp_path / "benchmark.json"
    result = run_module("launch.benchmark", "--flagfile=configs/3way.flags", "--data_dir=testdata",
                        "--category=washer", "--image_size=32", "--batch_size=12", "--steps=1",
                        "--sections=augment", f"--output={out}", timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    figures = json.loads(out.read_text())
    for key in ("augment_graph_views_per_s", "augment_xla_views_per_s",
                "augment_tfdata_views_per_s", "augment_tfdata_graph_views_per_s"):
        assert figures[key] > 0, key
        assert key in result.stdout, key
