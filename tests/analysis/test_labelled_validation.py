"""Labelled validation defects: cutpaste_tf.analysis.labelled_validation (kinds, AUROC per kind
and over all) and launch.validate end to end on the tiny run's held-out images."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from helpers import ROOT

from cutpaste_tf.analysis import labelled_validation as lv
from cutpaste_tf.evaluation import metrics

WASHER = ROOT / "testdata" / "washer"


def _validation_dir(tmp_path, kinds=("scratch", "stain")):
    """A validation folder with a few of washer's test defects per kind, an empty kind and a
    stray file (both left out)."""
    folder = tmp_path / "validation"
    for kind in kinds:
        (folder / kind).mkdir(parents=True)
        for src in sorted((WASHER / "test" / kind).glob("*.png"))[:3]:
            shutil.copy(src, folder / kind / src.name)
    (folder / "empty").mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("not a kind")
    return folder


def test_defect_kinds_lists_subfolders_with_images(tmp_path):
    kinds = lv.defect_kinds(str(_validation_dir(tmp_path)))
    assert list(kinds) == ["scratch", "stain"] and all(len(v) == 3 for v in kinds.values())
    with pytest.raises(ValueError, match="is not a folder"):
        lv.defect_kinds(str(tmp_path / "missing"))
    (tmp_path / "flat").mkdir()
    shutil.copy(sorted((WASHER / "test" / "stain").glob("*.png"))[0], tmp_path / "flat")
    with pytest.raises(ValueError, match="no subfolder of defect images"):
        lv.defect_kinds(str(tmp_path / "flat"))
    # MVTec LOCO keeps normal images in validation/good: they are not a kind of defect.
    (tmp_path / "flat" / "good").mkdir()
    shutil.copy(sorted((WASHER / "train" / "good").glob("*.png"))[0], tmp_path / "flat" / "good")
    with pytest.raises(ValueError, match="good/ holds normal ones"):
        lv.defect_kinds(str(tmp_path / "flat"))
    good = _validation_dir(tmp_path / "with_good") / "good"
    good.mkdir()
    shutil.copy(sorted((WASHER / "train" / "good").glob("*.png"))[0], good)
    assert list(lv.defect_kinds(str(good.parent))) == ["scratch", "stain"]


def test_validation_auroc_per_kind_and_over_all(tiny_run):
    model, estimator = tiny_run.model_and_density
    rng = np.random.default_rng(0)
    normal = rng.uniform(0.4, 0.6, size=(6, 32, 32, 3)).astype(np.float32)
    defects = {"a": rng.uniform(size=(4, 32, 32, 3)).astype(np.float32),
               "b": np.zeros((3, 32, 32, 3), np.float32)}
    result = lv.validation_auroc(model, estimator, normal, defects, "pooled")
    assert list(result) == ["a", "b", lv.ALL]
    # Each figure is the AUROC of the same scores the benchmark's score() gives.
    s = {k: lv.score(model, estimator, v, "pooled") for k, v in
         {"normal": normal, **defects}.items()}
    for kind, images in (("a", s["a"]), ("b", s["b"]), (lv.ALL, np.r_[s["a"], s["b"]])):
        labels = np.r_[np.zeros(6), np.ones(len(images))]
        assert result[kind] == pytest.approx(metrics.auroc(labels, np.r_[s["normal"], images]))
    with pytest.raises(ValueError, match="no normal images"):
        lv.validation_auroc(model, estimator, normal[:0], defects, "pooled")


def test_launcher_scores_held_out_images_against_the_validation_defects(
        tiny_run, tmp_path, run_launcher, capsys):
    from launch import validate as launcher

    model_dir = tiny_run.copy(tmp_path)
    folder = _validation_dir(tmp_path)
    status = run_launcher(launcher, f"--model_dir={model_dir}", f"--validation_dir={folder}")
    out, err = capsys.readouterr()
    assert status == 0, err[-3000:]
    assert "15 held-out normal training images against 3 scratch, 3 stain" in out
    saved = json.loads((model_dir / "validation.json").read_text())["categories"]["washer"]
    assert set(saved["auroc"]) == {"scratch", "stain", "all"}
    assert saved["num_normal"] == 15 and saved["num_defects"] == {"scratch": 3, "stain": 3}
    assert all(0.0 <= v <= 1.0 for v in saved["auroc"].values())
    table = (model_dir / "validation.md").read_text()
    assert "| washer | 15 | " in table and "scratch (n)" in table

    # The default folder is <data_dir>/<category>/validation; a missing one is named.
    data_dir = tmp_path / "data"
    (data_dir / "washer").mkdir(parents=True)
    status = run_launcher(launcher, f"--model_dir={model_dir}", f"--data_dir={data_dir}")
    err = capsys.readouterr().err
    assert status == 2 and f"{data_dir}/washer/validation is not a folder" in err
    shutil.copytree(_validation_dir(tmp_path / "other", kinds=("missing",)),
                    data_dir / "washer" / "validation")
    assert run_launcher(launcher, f"--model_dir={model_dir}", f"--data_dir={data_dir}") == 0
    saved = json.loads((model_dir / "validation.json").read_text())["categories"]["washer"]
    assert set(saved["auroc"]) == {"missing", "all"}


def test_launcher_refuses_bad_requests_by_name(tiny_run, tmp_path, run_launcher, capsys):
    from launch import validate as launcher

    model_dir = tiny_run.copy(tmp_path)
    folder = _validation_dir(tmp_path)
    cases = [([], "--data_dir (whose <category>/validation"),
             (["--category=fabric"], "no trained model for fabric"),
             ([f"--validation_dir={folder}", "--category=washer,fabric"],
              "no trained model for fabric")]
    for args, message in cases:
        assert run_launcher(launcher, f"--model_dir={model_dir}", *args) == 2
        assert message in capsys.readouterr().err
    # A run that held nothing out is refused before any model is loaded.
    record = json.loads((model_dir / "washer" / "threshold.json").read_text())
    record.update(normal_method="out_of_fold_quantile", normal_files=[])
    (model_dir / "washer" / "threshold.json").write_text(json.dumps(record))
    assert run_launcher(launcher, f"--model_dir={model_dir}", f"--validation_dir={folder}") == 2
    assert "held no training images out" in capsys.readouterr().err
