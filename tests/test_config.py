"""Config dataclasses: paper defaults, validation messages, JSON round trip."""

import dataclasses
import json

import pytest

from cutpaste_tf import config
from cutpaste_tf.config import (
    AugmentConfig,
    DensityConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
)


def test_defaults_are_the_papers_settings():
    t = TrainConfig()
    assert (t.task, t.batch_size, t.image_size) == ("3way", 96, (256, 256))
    assert t.total_steps == 256 * 256 == 65536
    assert (t.learning_rate, t.momentum, t.weight_decay) == (0.03, 0.9, 3e-5)
    assert t.sources_per_batch == 32 and t.num_classes == 3
    a = AugmentConfig()
    assert a.area_ratio == (0.02, 0.15) and a.aspect_ratio == (0.3, 3.3)
    assert a.scar_width == (2.0, 16.0) and a.scar_length == (10.0, 25.0) and a.scar_angle == 45.0
    assert a.patch_jitter == 0.1  # Appendix A.2 (0.2 tied on real cracks: docs/learning.md, 11)
    assert ModelConfig().head_widths == (512,)
    assert DensityConfig().kind == "gde" and DensityConfig().feature == "pooled"


def test_binary_tasks_use_two_views():
    t = TrainConfig(task="cutpaste", batch_size=64)
    assert t.num_views == 2 and t.sources_per_batch == 32


def test_json_round_trip_keeps_tuples_and_nesting():
    run = RunConfig(model=ModelConfig(head_widths=(128, 64)),
                    train=TrainConfig(task="union", batch_size=64, image_size=(192, 256),
                                      augment=AugmentConfig(area_ratio=(0.02, 0.1),
                                                            jitter=(0.1, 0.2, 0.3, 0.0))),
                    density=DensityConfig(kind="kde", kde_gamma=2.5))
    back = config.from_dict(RunConfig, json.loads(config.to_json(run)))
    assert back == run
    assert isinstance(back.train.augment.jitter, tuple)


def test_unknown_json_field_is_rejected():
    data = config.to_dict(RunConfig())
    data["train"]["learning_rat"] = 0.1
    with pytest.raises(ValueError, match="learning_rat"):
        config.from_dict(RunConfig, data)


@pytest.mark.parametrize("kwargs, message", [
    (dict(task="jigsaw"), "task must be one of"),
    (dict(batch_size=100), r"batch_size \(100\) must be a positive multiple of the 3 views"),
    (dict(task="cutpaste", batch_size=63), "multiple of the 2 views"),
    (dict(task="rotation", image_size=(256, 320), batch_size=64), "square image_size"),
    (dict(image_size=(16, 256)), "image_size"),
    (dict(epochs=-1), "epochs and head_epochs must be >= 0"),
    (dict(learning_rate=-1.0), "learning_rate"),
])
def test_train_config_errors_name_the_setting(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(area_ratio=(0.15, 0.02)), "area_ratio"),
    (dict(aspect_ratio=(0.3,)), "aspect_ratio"),
    (dict(patch_jitter=0.7), "patch_jitter"),
    (dict(jitter=(0.1, 0.1, 0.1)), "jitter must be four values"),
    (dict(jitter=(0.1, 0.1, 0.1, 0.6)), "hue <= 0.5"),
    (dict(translate=0.5), "translate"),
    (dict(scar_angle=200.0), "scar_angle"),
])
def test_augment_config_errors_name_the_setting(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AugmentConfig(**kwargs)


def test_density_config_errors():
    with pytest.raises(ValueError, match="density.kind"):
        DensityConfig(kind="gmm")
    with pytest.raises(ValueError, match="feature"):
        DensityConfig(feature="logits")


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().epochs = 1


def test_efficientnet_settings_are_checked():
    from cutpaste_tf.config import DensityConfig, LocalizationConfig, ModelConfig
    effnet = ModelConfig(backbone="efficientnet_b4")
    RunConfig(model=effnet, density=DensityConfig(feature="level7"))  # accepted
    with pytest.raises(ValueError, match="feature 'level7' needs a backbone"):
        RunConfig(density=DensityConfig(feature="level7"))
    with pytest.raises(ValueError, match="patch models .* resnet18 only"):
        RunConfig(model=effnet, localization=LocalizationConfig(model_type="patch"))
    with pytest.raises(ValueError, match="head_learning_rate"):
        TrainConfig(head_epochs=1, head_learning_rate=0.0)
    two_stage = TrainConfig(head_epochs=10, epochs=64, steps_per_epoch=256)
    assert (two_stage.head_steps, two_stage.total_steps) == (2560, 74 * 256)
    assert TrainConfig(epochs=0).total_steps == 0  # pretrained features only


def test_a_config_json_with_the_field_names_before_the_flags_still_loads(tmp_path):
    import json

    from cutpaste_tf import __version__, rundir
    from cutpaste_tf.config import LocalizationConfig

    run = RunConfig(density=DensityConfig(normalize_features=False),
                    localization=LocalizationConfig(dense_patch_size=16, upsample_sigma=3.0,
                                                    dense_chunk=64, heatmaps=False))
    old = json.loads(config.to_json(run))  # as an earlier build wrote it: the old names
    for section, before, now in rundir.RENAMED_FIELDS:
        old[section][before] = old[section].pop(now)
    assert old["localization"]["pictures"] is False and old["density"]["normalize"] is False
    (tmp_path / "config.json").write_text(json.dumps({**old, rundir.VERSION_KEY: __version__}))
    assert rundir.load_run_config(str(tmp_path)) == run
    other = dataclasses.replace(run, localization=dataclasses.replace(run.localization,
                                                                      dense_chunk=512))
    with pytest.raises(ValueError, match=r"different settings \(localization.dense_chunk\)"):
        rundir.check_model_dir(str(tmp_path), other)
    rundir.check_model_dir(str(tmp_path), run)  # the same run: it resumes
    assert "heatmaps" in json.loads((tmp_path / "config.json").read_text())["localization"]
