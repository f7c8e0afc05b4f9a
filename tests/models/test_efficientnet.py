"""EfficientNet-B4 transfer (Sec. 4.3, Appendix A.4): input range, level-7 output, weight
sources, and the two-stage (head, then every layer with frozen batch norm) fine-tuning.

Every model is tiny-input (32x32) with random weights: no ImageNet file is reachable here, so
the ImageNet path runs on a stand-in file served through Keras' own download function."""

import math

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.applications import efficientnet as keras_efficientnet
from keras.src.legacy.saving import legacy_h5_format

from cutpaste_tf.config import TrainConfig
from cutpaste_tf.models import build_cutpaste_model, efficientnet
from cutpaste_tf.models.cutpaste_net import backbone_of, check_backbone_weights
from cutpaste_tf.training import step as step_lib

SIZE = (32, 32)
CONFIG = TrainConfig(task="cutpaste", image_size=SIZE, batch_size=2, head_epochs=1, epochs=1,
                     steps_per_epoch=1, head_learning_rate=0.03, learning_rate=0.01,
                     freeze_batchnorm=True, log_every=1, checkpoint_every=100)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return build_cutpaste_model(2, (8,), "efficientnet_b4", input_shape=(*SIZE, 3))


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((2, *SIZE, 3), dtype=np.float32)


def _batches():
    rng = np.random.default_rng(1)
    while True:
        yield (tf.constant(rng.random((2, *SIZE, 3), dtype=np.float32)),
               tf.constant([0, 1], tf.int32))


def _values(variables) -> dict[str, np.ndarray]:
    return {v.path: np.array(v) for v in variables}


def test_outputs_pool_the_feature_map_and_block_group_7(model, images):
    out = model(images, training=False)
    assert out["feature_map"].shape == (2, 1, 1, 1792)
    assert out["pooled"].shape == (2, 1792)
    assert out["level7"].shape == (2, 448)
    assert out["embedding"].shape == (2, 8) and out["logits"].shape == (2, 2)
    backbone = backbone_of(model)
    block7 = backbone.get_layer("block7b_add")  # the last block of group 7
    probe = keras.Model(backbone.inputs, block7.output)
    np.testing.assert_allclose(out["level7"],
                               tf.reduce_mean(probe(255.0 * images), axis=[1, 2]),
                               rtol=1e-5, atol=1e-6)


def test_images_are_only_scaled_to_0_255_before_keras_efficientnet(model, images):
    # Keras' application normalises inside; our features on x must be its features on 255 x.
    raw = keras.applications.EfficientNetB4(include_top=False, weights=None,
                                            input_shape=(*SIZE, 3))
    raw.set_weights(backbone_of(model).get_weights())
    ours = model(images, training=False)["feature_map"]
    np.testing.assert_allclose(ours, raw(255.0 * images, training=False), rtol=1e-4, atol=1e-5)


def _stand_in_imagenet_file(tmp_path, model) -> str:
    """Keras' notop file layout (legacy .h5) with random weights and ImageNet-like stats."""
    path = str(tmp_path / "efficientnetb4_notop.h5")
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, backbone_of(model))
        stats = {"mean": [0.485, 0.456, 0.406], "variance": [0.229 ** 2, 0.224 ** 2, 0.225 ** 2]}
        found = []

        def visit(name, item):
            leaf = name.rsplit("/", 1)[-1].split(":")[0]
            if isinstance(item, h5py.Dataset) and "normalization" in name and leaf in stats:
                item[...] = stats[leaf]
                found.append(leaf)

        f.visititems(visit)
        assert sorted(found) == ["mean", "variance"]
    return path


def test_imagenet_weights_give_keras_imagenet_model_outputs(model, images, tmp_path,
                                                            monkeypatch):
    path = _stand_in_imagenet_file(tmp_path, model)
    fetch = lambda *args, **kwargs: path  # noqa: E731 -- Keras' download, served locally
    monkeypatch.setattr(keras_efficientnet.file_utils, "get_file", fetch)
    monkeypatch.setattr(keras.utils, "get_file", fetch)
    reference = keras.applications.EfficientNetB4(include_top=False, weights="imagenet",
                                                  input_shape=(*SIZE, 3))
    ours = efficientnet.efficientnet_b4((*SIZE, 3), weights="imagenet")
    expected = reference(255.0 * images, training=False)
    got = ours(efficientnet.efficientnet_scaling()(images), training=False)["feature_map"]
    assert float(tf.reduce_max(tf.abs(expected))) > 0
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_saved_backbone_weights_load_into_another_model(model, images, tmp_path):
    path = str(tmp_path / "backbone.weights.h5")
    backbone_of(model).save_weights(path)
    keras.utils.set_random_seed(1)  # different initial weights, replaced by the file's
    other = build_cutpaste_model(2, (8,), "efficientnet_b4", input_shape=(*SIZE, 3),
                                 backbone_weights=path)
    a, b = model(images, training=False), other(images, training=False)
    for name in ("feature_map", "pooled", "level7"):
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6)


def test_weight_sources_fail_clearly(monkeypatch, tmp_path):
    with pytest.raises(efficientnet.WeightsError, match="no such file"):
        check_backbone_weights("efficientnet_b4", str(tmp_path / "missing.weights.h5"))
    with pytest.raises(efficientnet.WeightsError, match="expected 'imagenet', 'none'"):
        check_backbone_weights("efficientnet_b4", "weights.ckpt")
    empty = str(tmp_path / "empty.weights.h5")
    h5py.File(empty, "w").close()
    with pytest.raises(efficientnet.WeightsError, match=r"could not load it into EfficientNet-B4"):
        efficientnet.efficientnet_b4((*SIZE, 3), weights=empty)

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: Name or service not known")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(efficientnet.WeightsError,
                       match=r"backbone_weights=imagenet: could not download.*"
                             r"backbone_weights=/path/to/efficientnetb4_notop.h5"):
        efficientnet.efficientnet_b4((*SIZE, 3), weights="imagenet")
    with pytest.raises(ValueError, match="'resnet18' has no pretrained weights"):
        build_cutpaste_model(2, (8,), "resnet18", input_shape=(*SIZE, 3),
                             backbone_weights="imagenet")


def test_two_stage_schedule_is_one_cosine_cycle_per_stage():
    config = TrainConfig(head_epochs=2, epochs=4, steps_per_epoch=10, head_learning_rate=0.03,
                         learning_rate=1e-4)
    lr = step_lib.make_schedule(config)
    assert config.total_steps == 60 and config.head_steps == 20
    assert float(lr(0)) == pytest.approx(0.03)
    assert float(lr(10)) == pytest.approx(0.015, rel=1e-5)
    assert float(lr(19)) == pytest.approx(0.03 * 0.5 * (1 + math.cos(math.pi * 19 / 20)), rel=1e-4)
    assert float(lr(20)) == pytest.approx(1e-4)
    assert float(lr(40)) == pytest.approx(5e-5, rel=1e-5)
    assert float(lr(60)) == pytest.approx(0.0, abs=1e-12)
    assert [step_lib.stage_of(s, config) for s in (0, 19, 20, 59)] == ["head"] * 2 + ["full"] * 2


def _split(model):
    backbone = backbone_of(model)
    bn = [v for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)
          for v in layer.weights]
    bn_paths = {v.path for v in bn}
    kernels = [v for v in backbone.weights if v.path not in bn_paths]
    backbone_paths = {v.path for v in backbone.weights}
    head = [v for v in model.weights if v.path not in backbone_paths]
    return kernels, bn, head


def _changed(before, after) -> set[str]:
    return {k for k in before if not np.array_equal(before[k], after[k])}


def test_stage_one_trains_only_the_head_and_stage_two_keeps_batch_norm(model):
    kernels, bn, head = _split(model)
    trainable = [v.path for v in model.trainable_variables]
    optimizer = step_lib.make_optimizer(CONFIG)
    optimizer.build(model.trainable_variables)
    batches = _batches()

    # Eager steps: one eager step of B4 costs a few CPU seconds, tracing its graph far more.
    tf.config.run_functions_eagerly(True)
    try:
        _two_stage_steps(model, optimizer, batches, kernels, bn, head)
    finally:
        tf.config.run_functions_eagerly(False)
    step_lib.set_stage(model, None, CONFIG)
    assert [v.path for v in model.trainable_variables] == trainable  # all trainable again


def _two_stage_steps(model, optimizer, batches, kernels, bn, head):
    everything = kernels + bn + head
    start = _values(everything)
    step_lib.set_stage(model, step_lib.stage_of(0, CONFIG), CONFIG)
    step_lib.make_train_step(model, optimizer, CONFIG)(*next(batches))
    after_head = _values(everything)
    changed = _changed(start, after_head)
    assert changed and changed <= {v.path for v in head}

    step_lib.set_stage(model, step_lib.stage_of(CONFIG.head_steps, CONFIG), CONFIG)
    step_lib.make_train_step(model, optimizer, CONFIG)(*next(batches))
    changed = _changed(after_head, _values(everything))
    assert changed & {v.path for v in kernels}  # the backbone trained ...
    assert not changed & {v.path for v in bn}  # ... its batch norm (stats, scale) did not
