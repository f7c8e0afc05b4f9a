"""cutpaste_tf.settings: settings by flag name -> typed configs, the same for launch.train's flags,
keyword arguments and flagfiles."""

from __future__ import annotations

import pytest
from helpers import ROOT

from cutpaste_tf import settings
from cutpaste_tf.config import RunConfig
from cutpaste_tf.pipeline.inputs import InputSpec


def test_the_settings_are_launch_trains_flags_with_the_same_defaults(parse_flags):
    from launch import configs
    from launch import flags as flag_defs

    assert settings.NAMES == set(flag_defs.accepted("launch.train"))
    parse_flags()
    defaults = {name: configs.FLAGS[name].default for name in settings.NAMES}
    assert settings.from_values(defaults) == settings.from_values({}) == settings.Settings(
        RunConfig(), InputSpec(), settings.RunOptions())


@pytest.mark.parametrize("flagfile", sorted(p.name for p in (ROOT / "configs").glob("*.flags")
                                            if not p.name.startswith("sweep_")))
def test_a_flagfile_gives_the_launchers_configs(parse_flags, flagfile):
    from launch import configs

    parse_flags(f"--flagfile=configs/{flagfile}", "--image_size=64,64", "--nogradcam",
                "--category=a,b")
    read = settings.from_values({**settings.read_flagfile(f"configs/{flagfile}"),
                                 "image_size": 64, "gradcam": False,
                                 "category": ["a", "b"]})
    assert read == configs.run_settings()


def test_values_as_python_or_as_text():
    for size in (64, "64", (64, 64), ["64"], "64,64"):
        assert settings.run_config({"image_size": size}).train.image_size == (64, 64)
    for off in (False, "false", "0", "no"):
        assert settings.run_config({"gradcam": off}).localization.gradcam is False
    assert settings.run_config({"head_widths": ""}).model.head_widths == ()
    assert settings.run_config({"head_widths": (512, 256)}).model.head_widths == (512, 256)
    assert settings.run_config({"jitter": "0.1,0.1,0.1,0"}).train.augment.jitter == (
        0.1, 0.1, 0.1, 0.0)
    assert settings.run_config({"per_location": "true"}).localization.per_location is True
    assert settings.run_config({"backbone_weights": "none"}).model.backbone_weights is None
    assert settings.run_config({"density": "kde", "threshold_quantile": "0.9"}).density.kind == (
        "kde")
    assert settings.input_spec({"category": "a,b"}).categories == ("a", "b")
    said = []
    assert settings.run_config({"feature": "pool"}, said.append).density.feature == "pooled"
    assert said == ["feature=pool is deprecated; use feature=pooled"]


@pytest.mark.parametrize("values, message", [
    ({"epochs": "x"}, "epochs=x must be an integer"),
    ({"epochs": 1.5}, "epochs=1.5 must be an integer"),
    ({"jitter": (0.1,)}, "jitter=0.1: jitter needs 4 comma-separated values"),
    ({"area_ratio": "a,b"}, "area_ratio=a,b: area_ratio must be numbers"),
    ({"image_size": "1,2,3"}, "image_size=1,2,3: image_size takes one value or height,width"),
    ({"gradcam": "maybe"}, "gradcam=maybe must be true or false"),
    ({"per_location": "yes"}, "per_location=yes must be auto, true or false"),
    ({"strategy": "gpu"}, "strategy=gpu must be one of auto, default"),
    ({"learnig_rate": 0.1}, "learnig_rate is not a setting of a training run (docs/flags.md "
                            "lists them); did you mean learning_rate"),
])
def test_bad_values_are_named(values, message):
    with pytest.raises(ValueError) as e:
        settings.from_values(values)
    assert message in str(e.value)


def test_read_flagfile_reads_as_absl_does(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "base.flags").write_text("# comment\n--task=scar\n--epochs=3\n--gradcam\n")
    (tmp_path / "run.flags").write_text("--flagfile=base.flags\n\n// also a comment\n"
                                        "--epochs=5\n--nogradcam\n--category=washer\n")
    assert settings.read_flagfile("run.flags") == {"task": "scar", "epochs": "5",
                                                   "gradcam": "false", "category": "washer"}
    (tmp_path / "bad.flags").write_text("--epochs=5\n--no_such_setting=1\n")
    with pytest.raises(ValueError, match="flagfile bad.flags: no_such_setting is not a setting"):
        settings.read_flagfile("bad.flags")
    with pytest.raises(ValueError, match="flagfile missing.flags: No such file"):
        settings.read_flagfile("missing.flags")


def test_flagfile_text_redoes_the_settings(tmp_path):
    values = {"task": "scar", "image_size": (64, 96), "gradcam": False, "decode_check": True,
              "category": ["washer", "fabric"], "kde_gamma": None, "jitter": "0.1,0,0,0"}
    path = tmp_path / "flags.txt"
    path.write_text(settings.flagfile_text(values))
    assert "--nogradcam\n" in path.read_text() and "--decode_check\n" in path.read_text()
    assert settings.from_values(settings.read_flagfile(str(path))) == settings.from_values(values)


def test_the_export_dir_defaults_to_the_model_dirs():
    assert settings.export_dir(settings.RunOptions(model_dir="runs/x")) == "runs/x/export"
    assert settings.export_dir(settings.RunOptions(model_dir="r", export_dir="e")) == "e"
    assert settings.export_dir(settings.RunOptions(model_dir="r", export_dir="None")) is None
