"""cutpaste_tf.driver: the one driver of a run (launch.train, launch.experiment and
cutpaste_tf.train run through it)."""

from cutpaste_tf import driver
from cutpaste_tf.config import ModelConfig, RunConfig, TrainConfig


def test_untrained_warning_only_without_training_and_without_backbone_weights():
    def config(epochs, weights):
        return RunConfig(model=ModelConfig(backbone_weights=weights),
                         train=TrainConfig(epochs=epochs))

    assert "epochs=0 with a randomly initialised backbone" in driver.untrained_warning(
        config(0, None))
    assert driver.untrained_warning(config(0, "imagenet")) == ""
    assert driver.untrained_warning(config(1, None)) == ""


def test_the_saved_models_line_names_the_folder_of_a_single_category():
    assert driver.saved_models_line("runs/a/export", ["bottle"], 1) == (
        "SavedModels: runs/a/export/bottle/1")
    assert driver.saved_models_line("runs/a/export", ["fabric", "washer"], 2) == (
        "SavedModels: runs/a/export/<category>/2 for <category> in fabric, washer")
