"""Experiments: seeds, mean ± standard error, the ensemble, sweeps (cutpaste_tf.analysis.experiment,
cutpaste_tf.reporting.experiment_tables, launch.experiment)."""

import json
import math
import os
import pathlib

import numpy as np
import pytest

from cutpaste_tf.analysis import experiment
from cutpaste_tf.reporting import experiment_tables, paper

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY = [f"--flagfile={ROOT / 'configs' / 'quickstart.flags'}", f"--data_dir={ROOT / 'testdata'}",
        "--category=washer", "--image_size=32", "--batch_size=6", "--epochs=1",
        "--steps_per_epoch=2", "--checkpoint_every=2", "--log_every=1", "--head_widths=16",
        "--progress=false", "--gradcam=false", "--export_dir=none", "--threshold_folds=2",
        "--model_dir="]


# ---------------------------------------------------------------------------------- statistics

def test_per_category_mean_and_standard_error_match_numpy():
    rng = np.random.default_rng(0)
    per_seed = {c: dict(enumerate(rng.uniform(0.5, 1.0, 5))) for c in ("carpet", "screw")}
    kinds = {"carpet": "texture", "screw": "object"}
    out = experiment.aggregate(per_seed, kinds)
    for c, by_seed in per_seed.items():
        v = np.array(list(by_seed.values()))
        assert out["per_category"][c]["mean"] == pytest.approx(v.mean())
        assert out["per_category"][c]["se"] == pytest.approx(v.std(ddof=1) / math.sqrt(5))
        assert out["per_category"][c]["n"] == 5


def test_group_averages_are_the_papers_average_of_means_and_standard_errors():
    # Seeds move the two object categories in opposite directions: each seed's object average
    # is 0.8, so the s.e. over seeds is 0, while the paper's mean of the categories' s.e. is not.
    per_seed = {"bottle": {0: 0.7, 1: 0.9, 2: 0.8}, "screw": {0: 0.9, 1: 0.7, 2: 0.8},
                "grid": {0: 0.5, 1: 0.6, 2: 0.9}}
    kinds = {"bottle": "object", "screw": "object", "grid": "texture"}
    out = experiment.aggregate(per_seed, kinds)
    se = {c: np.std(list(v.values()), ddof=1) / math.sqrt(3) for c, v in per_seed.items()}
    obj = out["averages"]["object"]
    assert obj["mean"] == pytest.approx(0.8) and obj["categories"] == 2
    assert obj["se"] == pytest.approx((se["bottle"] + se["screw"]) / 2) and obj["se"] > 0.05
    assert obj["over_seeds"]["se"] == pytest.approx(0.0, abs=1e-12)
    assert out["averages"]["all"]["se"] == pytest.approx(np.mean(list(se.values())))
    all_per_seed = np.array([(0.7 + 0.9 + 0.5) / 3, (0.9 + 0.7 + 0.6) / 3, (0.8 + 0.8 + 0.9) / 3])
    over = out["averages"]["all"]["over_seeds"]
    assert over["mean"] == pytest.approx(all_per_seed.mean())
    assert over["se"] == pytest.approx(all_per_seed.std(ddof=1) / math.sqrt(3))
    assert out["averages"]["texture"]["over_seeds"]["values"] == {"0": 0.5, "1": 0.6, "2": 0.9}


def _table(per_seed, kinds, seeds):
    out = experiment.aggregate(per_seed, kinds)
    setting = {"name": "cutpaste", "task": "cutpaste", "flag": None, "value": None,
               "runs": {str(s): f"cutpaste/seed_{s}" for s in seeds}, "kinds": kinds, **out,
               "ensemble": None}
    setting["paper"] = experiment_tables.paper_numbers(setting, kinds)
    return out, experiment_tables.markdown({"settings": [setting], "kinds": kinds,
                                            "seeds": list(seeds), "sweep": None})


def test_table_plus_minus_is_the_papers_statistic_with_known_numbers():
    # carpet: 0.90, 0.92, 0.94 -> mean 0.92, sd 0.02, s.e. 0.02 / sqrt(3) = 0.011547.
    # bottle: 0.98, 0.86, 0.80 -> mean 0.88, sd sqrt(0.0168 / 2) = 0.091652, s.e. 0.052915.
    # Paper's "all": mean (0.92 + 0.88) / 2 = 0.90 ± (0.011547 + 0.052915) / 2 = 0.032231.
    # Per-seed averages 0.94, 0.89, 0.87: sd sqrt(0.0026 / 2) = 0.036056, s.e. 0.020817.
    per_seed = {"carpet": {0: 0.90, 1: 0.92, 2: 0.94}, "bottle": {0: 0.98, 1: 0.86, 2: 0.80}}
    kinds = {"carpet": "texture", "bottle": "object"}
    out, text = _table(per_seed, kinds, [0, 1, 2])
    avg = out["averages"]["all"]
    assert avg["mean"] == pytest.approx(0.90) and avg["se"] == pytest.approx(0.032231, abs=1e-6)
    assert avg["over_seeds"]["se"] == pytest.approx(0.020817, abs=1e-6)
    assert out["averages"]["object"]["se"] == pytest.approx(0.052915, abs=1e-6)
    assert "| Category | CutPaste (ours) | CutPaste (paper) | CutPaste: s.e. of the average over " \
           "seeds (ours) |" in text
    assert "| carpet | 92.0 ± 1.2 | 67.9 ± 1.8 |  |" in text
    assert "| **texture average** | 92.0 ± 1.2 | — | 1.2 |" in text
    assert "| **object average** | 88.0 ± 5.3 | — | 5.3 |" in text
    assert "| **average** | 90.0 ± 3.2 | — | 2.1 |" in text
    # The same statistic as metrics.summarize (single-model tables, the localisation table).
    from cutpaste_tf.evaluation import metrics
    summary = metrics.summarize({c: list(v.values()) for c, v in per_seed.items()}, kinds)
    assert summary["averages"]["all"] == pytest.approx((avg["mean"], avg["se"]))


def test_sweep_table_has_a_row_of_the_averages_standard_error():
    per_seed = {"carpet": {0: 0.90, 1: 0.92, 2: 0.94}, "bottle": {0: 0.98, 1: 0.86, 2: 0.80}}
    kinds = {"carpet": "texture", "bottle": "object"}
    out = experiment.aggregate(per_seed, kinds)
    setting = {"name": "3way/epochs=2", "task": "3way", "flag": "epochs", "value": "2",
               "runs": {"0": "a", "1": "b", "2": "c"}, "kinds": kinds, **out, "ensemble": None}
    setting["paper"] = experiment_tables.paper_numbers(setting, kinds)
    text = experiment_tables.sweep_table([setting])
    assert "| all (ours) | 90.0 ± 3.2 |" in text
    assert "| all: s.e. of the average over seeds (ours) | 2.1 |" in text


def test_group_average_uses_only_seeds_with_every_category_for_its_own_error():
    per_seed = {"bottle": {0: 0.7, 1: 0.9}, "screw": {0: 0.9}}
    out = experiment.aggregate(per_seed, {"bottle": "object", "screw": "object"})
    # screw has one seed, hence no s.e., hence no paper-style ± for the group.
    assert out["averages"]["object"]["mean"] == pytest.approx((0.8 + 0.9) / 2)
    assert out["averages"]["object"]["se"] is None
    assert out["averages"]["object"]["over_seeds"] == {
        "mean": pytest.approx(0.8), "se": None, "n": 1, "values": {"0": pytest.approx(0.8)}}


def test_one_seed_has_no_standard_error_and_no_plus_minus():
    out, text = _table({"washer": {3: 0.9}}, {"washer": "object"}, [3])
    assert out["per_category"]["washer"]["se"] is None
    assert out["averages"]["all"] == {"mean": 0.9, "se": None, "categories": 1, "over_seeds": {
        "mean": 0.9, "se": None, "n": 1, "values": {"3": 0.9}}}
    assert "| washer | 90.0 | — |" in text and "±" not in text.split("Averaging")[1].split(
        "\n", 1)[1]
    assert "s.e. of the average" not in text.split("Averaging")[1].split("\n", 1)[1]


def test_bad_kind_is_named():
    with pytest.raises(ValueError, match="'washer' has kind 'metal'"):
        experiment.aggregate({"washer": {0: 0.9}}, {"washer": "metal"})


# -------------------------------------------------------------------------- seeds and sweeps

def test_seeds_are_a_count_or_a_list():
    assert experiment.parse_seeds(["3"]) == [0, 1, 2]
    assert experiment.parse_seeds(["4", "7"]) == [4, 7]
    for bad, message in ((["0"], "at least 1"), (["a"], "must be integers"),
                         (["1", "1"], "distinct")):
        with pytest.raises(ValueError, match=message):
            experiment.parse_seeds(bad)


@pytest.mark.parametrize("text, message", [
    ("learning_rate", "must look like FLAG=VALUE1"),
    ("learning_rate=", "must look like FLAG=VALUE1"),
    ("=0.1,0.2", "must look like FLAG=VALUE1"),
    ("epochs=1,,2", "empty value"),
    ("epochs=1,1", "repeats a value"),
    ("seed=1,2", "cannot vary seed:"),
    ("task=scar,3way", "cannot vary task:"),
])
def test_sweep_syntax_errors(text, message):
    with pytest.raises(ValueError, match=message):
        experiment.parse_sweep(text)


@pytest.fixture
def parsed_flags(parse_flags):
    """parsed_flags(*args): launch.experiment's settings for TINY + args."""
    from cutpaste_tf import driver
    from launch import configs

    def parse(*args):
        parse_flags(*TINY, *args)
        return driver.experiment_settings(configs.values(), configs.FLAGS.tasks,
                                          configs.FLAGS.sweep, configs.warn)

    return parse


@pytest.mark.parametrize("sweep, field, expected", [
    ("learning_rate=0.1,0.003", lambda c: c.train.learning_rate, [0.1, 0.003]),
    ("epochs=128,384", lambda c: c.train.epochs, [128, 384]),
    ("patch_jitter=0,0.3", lambda c: c.train.augment.patch_jitter, [0.0, 0.3]),
    ("area_ratio=0.02:0.1,0.02:0.3", lambda c: c.train.augment.area_ratio,
     [(0.02, 0.1), (0.02, 0.3)]),
])
def test_ablation_flags_reach_the_config(parsed_flags, sweep, field, expected):
    settings = parsed_flags(f"--sweep={sweep}", "--tasks=3way,scar")
    assert [s.task for s in settings] == ["3way", "3way", "scar", "scar"]
    assert [field(s.config) for s in settings] == expected * 2
    assert all(s.config.train.task == s.task for s in settings)
    name = sweep.split("=")[0]
    assert settings[1].name == f"3way/{name}={expected[1] if name != 'area_ratio' else '0.02-0.3'}"


@pytest.mark.parametrize("sweep, message", [
    ("learnin_rate=0.1,0.2", "learnin_rate is not a setting of a training run"),
    ("learning_rate=0.1,-1", "learning_rate=-1 (task cutpaste): need learning_rate > 0"),
    ("epochs=2,many", "epochs=many (task cutpaste): epochs=many must be an integer"),
    ("area_ratio=0.02:0.1,0.3", "area_ratio=0.3: area_ratio needs 2 comma-separated values"),
    ("patch_jitter=0.1,0.9", "patch_jitter must be in [0, 0.5]"),
    ("progress=true,false", "progress does not change training"),
])
def test_bad_sweeps_are_named_before_training(parsed_flags, sweep, message):
    with pytest.raises(ValueError) as e:
        parsed_flags(f"--sweep={sweep}")
    assert message in str(e.value)


def test_unknown_task_is_named(parsed_flags):
    with pytest.raises(ValueError, match="tasks=cutpaste,rotate: each task once"):
        parsed_flags("--tasks=cutpaste,rotate")


def test_sweep_table_shows_the_papers_averages_for_the_full_mvtec_set():
    kinds = dict(paper.MVTEC_KINDS)
    per_seed = {c: {0: 0.9, 1: 0.95} for c in kinds}
    settings = []
    for value in ("0.1", "0.003"):
        s = {"name": f"3way/learning_rate={value}", "task": "3way", "flag": "learning_rate",
             "value": value, "runs": {"0": "", "1": ""}, "kinds": kinds, "ensemble": None,
             **experiment.aggregate(per_seed, kinds)}
        settings.append({**s, "paper": experiment_tables.paper_numbers(s, kinds)})
    table = experiment_tables.sweep_table(settings)
    assert "| texture (ours) | 92.5 ± 2.5 | 92.5 ± 2.5 |" in table
    assert "| texture (paper) | 97.1 ± 0.3 | 96.1 ± 0.7 |" in table
    assert "| all (paper) | 95.3 ± 0.5 | 94.6 ± 0.6 |" in table
    fewer = {k: v for k, v in kinds.items() if k != "screw"}  # no longer the paper's object set
    s = {**settings[0], "kinds": fewer}
    assert experiment_tables.paper_numbers(s, fewer)["averages"].keys() == {"texture"}


# ------------------------------------------------------------------------------- end to end

def test_mini_experiment_writes_tables_and_a_rerun_trains_nothing(tmp_path, monkeypatch,
                                                                   parse_flags):
    from cutpaste_tf.pipeline import runner
    from launch import experiment as launcher

    calls = []
    original = runner.run_category
    monkeypatch.setattr(runner, "run_category",
                        lambda data, config, model_dir, *a, **k:
                        calls.append((model_dir, config.train.seed))
                        or original(data, config, model_dir, *a, **k))
    exp_dir = tmp_path / "exp"
    parse_flags(*TINY, "--tasks=cutpaste,scar", "--seeds=2", "--translate=0",
                "--jitter=0,0,0,0", "--decode_check=false",  # less to trace: a faster test
                f"--experiment_dir={exp_dir}")
    launcher.main(["experiment"])
    assert sorted(calls) == sorted((str(exp_dir / t / f"seed_{s}"), s)
                                   for t in ("cutpaste", "scar") for s in (0, 1))
    mtimes = {p: p.stat().st_mtime_ns for p in exp_dir.rglob("checkpoints/*")}
    assert mtimes
    calls.clear()
    launcher.main(["experiment"])
    assert calls == []  # the rerun trains and evaluates nothing
    # A run whose category has no results yet (killed after training) is run again, alone;
    # it resumes from its last checkpoint, so it does not train again either.
    (exp_dir / "scar" / "seed_1" / "washer" / "results.json").unlink()
    launcher.main(["experiment"])
    assert calls == [(str(exp_dir / "scar" / "seed_1"), 1)]
    assert {p: p.stat().st_mtime_ns for p in exp_dir.rglob("checkpoints/*")} == mtimes

    summary = json.loads((exp_dir / "results.json").read_text())
    assert [s["name"] for s in summary["settings"]] == ["cutpaste", "scar"]
    for s in summary["settings"]:
        values = [json.loads((exp_dir / s["runs"][str(k)] / "washer" / "results.json")
                             .read_text())["auroc"] for k in (0, 1)]
        assert s["per_category"]["washer"]["mean"] == pytest.approx(np.mean(values))
        assert s["per_category"]["washer"]["se"] == pytest.approx(np.std(values, ddof=1)
                                                                  / math.sqrt(2))
        assert 0.0 <= s["ensemble"]["per_category"]["washer"] <= 1.0
        assert s["ensemble"]["num_models"] == 2 and not s["ensemble"]["unavailable"]
        flags_txt = (exp_dir / s["runs"]["1"] / "flags.txt").read_text()
        assert f"--task={s['task']}\n--seed=1\n" in flags_txt
        # launch.train --flagfile= on it redoes the run: no flag launch.train would refuse.
        assert "--experiment_dir" not in flags_txt and "--seeds" not in flags_txt
        assert "--test_tmpdir" not in flags_txt
    table = (exp_dir / "results.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| washer |"))
    assert row.count("±") == 2 and row.count("—") == 2  # ours ± s.e.; no paper numbers
    assert "Ensemble of 2, CutPaste (ours)" in table
    assert "Ensemble of 2, CutPaste (scar) (ours)" in table
    assert os.path.exists(exp_dir / "scar" / "seed_0" / "results.md")  # each run is a model dir
    page = (exp_dir / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2  # one ROC plot per setting and category
    assert "Ensemble of 2, CutPaste (ours)" in page
    from cutpaste_tf.reporting import experiment_report
    curves = experiment_report._curves(str(exp_dir), summary["settings"][0], "washer")
    assert list(curves) == ["seed 0", "seed 1", "ensemble of 2"]
    from cutpaste_tf.evaluation import metrics
    assert metrics.auroc(*curves["ensemble of 2"]) == pytest.approx(
        summary["settings"][0]["ensemble"]["per_category"]["washer"])


def test_experiment_report_names_a_dir_without_results(tmp_path):
    from cutpaste_tf.reporting import experiment_report
    with pytest.raises(ValueError, match="holds no results.json of a launch.experiment run"):
        experiment_report.write_experiment_report(str(tmp_path))


@pytest.mark.parametrize("name, flag, count", [
    ("sweep_learning_rate", "learning_rate", 4), ("sweep_epochs", "epochs", 5),
    ("sweep_patch_jitter", "patch_jitter", 4), ("sweep_area", "area_ratio", 4)])
def test_sweep_configs_cover_the_papers_columns(parsed_flags, name, flag, count):
    settings = parsed_flags(f"--flagfile={ROOT / 'configs' / f'{name}.flags'}")
    assert len(settings) == count and {s.flag for s in settings} == {flag}
    assert {s.task for s in settings} == {"3way"}
    assert all(s.config.train.batch_size == 96 and s.config.train.steps_per_epoch == 256
               for s in settings)
    for s in settings:  # every value is a column of Table 7 / 8
        assert paper.ablation_result(flag, float(s.value.split(":")[-1])) is not None


def test_table1_puts_the_papers_numbers_and_ensemble_beside_ours_for_all_of_mvtec():
    kinds = dict(paper.MVTEC_KINDS)
    per_seed = {c: {0: 0.9, 1: 0.95} for c in kinds}
    s = {"name": "3way", "task": "3way", "flag": None, "value": None, "runs": {"0": "", "1": ""},
         "kinds": kinds, **experiment.aggregate(per_seed, kinds),
         "ensemble": {"num_models": 2, "per_category": {c: 0.97 for c in kinds},
                      "averages": experiment.group_means({c: 0.97 for c in kinds}, kinds),
                      "unavailable": {}}}
    text = experiment_tables.table1([{**s, "paper": experiment_tables.paper_numbers(s, kinds)}],
                                    kinds)
    lines = text.splitlines()
    assert lines[0] == ("| Category | CutPaste (3-way) (ours) | CutPaste (3-way) (paper) | "
                        "CutPaste (3-way): s.e. of the average over seeds (ours) | "
                        "Ensemble of 2, CutPaste (3-way) (ours) | "
                        "Ensemble of 5, CutPaste (3-way) (paper) |")
    assert "| metal nut | 92.5 ± 2.5 | 99.3 ± 0.2 |  | 97.0 | 99.9 |" in lines
    assert "| **texture average** | 92.5 ± 2.5 | 97.0 ± 0.5 | 2.5 | 97.0 | 97.5 |" in lines
    assert lines[-1] == "| **average** | 92.5 ± 2.5 | 95.2 ± 0.6 | 2.5 | 97.0 | 96.1 |"
    names = [line.split(" | ")[0][2:] for line in lines[2:]]
    assert names[:7] == ["*texture*", "carpet", "grid", "leather", "tile", "wood",
                         "**texture average**"]


@pytest.mark.parametrize("args, message", [
    (["--sweep=learning_rate=0.1,-1"], "error: --sweep=learning_rate=0.1,-1: --learning_rate=-1"),
    (["--seeds=0"], "error: --seeds=0: a count must be at least 1"),
    (["--export_dir=/tmp/x"], "error: --export_dir: each run exports into <run>/export"),
    (["--category=bottle"], "'bottle' not found in data directory"),
])
def test_launcher_exits_2_with_the_error_before_writing_anything(tmp_path, capsys, args,
                                                                 message, run_launcher):
    from launch import experiment as launcher

    exp_dir = tmp_path / "exp"
    assert run_launcher(launcher, *TINY, f"--experiment_dir={exp_dir}", *args) == 2
    assert message in capsys.readouterr().err
    assert not exp_dir.exists()
