"""cutpaste_tf/pipeline/localize.py: GradCAM localisation of an image-level model (pixel
metrics, pictures, the reason when a map is too small)."""

import dataclasses
import pathlib

from cutpaste_tf import data
from cutpaste_tf.config import LocalizationConfig, ModelConfig, RunConfig, TrainConfig
from cutpaste_tf.evaluation import evaluate
from cutpaste_tf.pipeline import build, localize

TESTDATA = str(pathlib.Path(__file__).resolve().parents[2] / "testdata")


def test_image_model_gradcam_localisation_metrics_and_pictures(tmp_path):
    """What runner.run_category adds for an image model on data with masks (untrained model here)."""
    washer = data.index_mvtec(TESTDATA, "washer")
    config = RunConfig(model=ModelConfig(head_widths=(16,)),
                       train=TrainConfig(task="cutpaste", image_size=(32, 48), batch_size=4),
                       eval_batch_size=36)
    model = build.build_model(config)
    estimator = evaluate.fit_density(model, washer, (32, 48), config.density, 60)
    result = localize.gradcam_results(model, estimator, washer, config, str(tmp_path))
    assert result["localization_method"] == "gradcam"
    # auto at 32x48: layer1, the only stage with a map of at least 8x8.
    assert result["gradcam_layer"] == "layer1" and result["gradcam_map_size"] == [8, 12]
    assert 0.0 <= result["pixel_auroc"] <= 1.0 and 0.0 <= result["aupro"] <= 1.0
    assert result["num_pixel_eval_images"] == 36
    assert (tmp_path / "heatmaps" / "washer_grid.png").exists()
    no_masks = dataclasses.replace(washer, mask_files=(None,) * len(washer.mask_files))
    assert localize.gradcam_results(model, estimator, no_masks, config, str(tmp_path)) == {}
    # A forced map under 8x8 gives the reason instead of a number, and no pictures.
    forced = dataclasses.replace(config, localization=LocalizationConfig(gradcam_layer="layer3"))
    small = localize.gradcam_results(model, estimator, washer, forced,
                                     str(tmp_path / "forced"))
    assert small == {"localization_method": "gradcam", "gradcam_layer": "layer3",
                     "gradcam_map_size": [2, 3], "pixel_auroc_not_reported": (
                         "pixel AUROC not reported: the GradCAM map (layer3) is 2×3 at 32×48 px "
                         "(needs ≥ 8×8; use --gradcam_layer=layer1 or a larger --image_size)")}
    assert not (tmp_path / "forced").exists()
