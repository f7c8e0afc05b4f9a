"""Tests for cutpaste_tf.models: parameter counts, shapes, normalisation, XLA."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from cutpaste_tf.models import (
    BACKBONES,
    build_cutpaste_model,
    projection_head,
    resnet18,
)
from cutpaste_tf.models.resnet import IMAGENET_MEAN, IMAGENET_STD

# torchvision resnet18: 11,689,512 params, minus fc (512 * 1000 + 1000 = 513,000).
RESNET18_TRAINABLE = 11_176_512
# backbone + one head layer (512*512 kernel + 2*512 BN gamma/beta) + classifier 512*3 + 3
#   = 11,176,512 + 263,168 + 1,539 = 11,441,219
FULL_TRAINABLE_1x512_3CLS = 11_441_219
# with the authors' eight head layers: + 7 * 263,168 = 13,283,395
FULL_TRAINABLE_8x512_3CLS = 13_283_395


def _trainable(model: keras.Model) -> int:
    """Counts trainable scalars."""
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _images(*shape: int, seed: int = 0) -> np.ndarray:
    """Random float32 images in [0, 1]."""
    return np.random.default_rng(seed).uniform(size=shape).astype(np.float32)


@pytest.fixture(scope="module")
def model() -> keras.Model:
    """Default model (8x512 head) with 3 classes, shared across tests."""
    return build_cutpaste_model(num_classes=3)


def test_resnet18_param_count_matches_torchvision() -> None:
    backbone = resnet18()
    assert _trainable(backbone) == RESNET18_TRAINABLE
    convs = [l for l in backbone.layers if isinstance(l, keras.layers.Conv2D)]
    assert len(convs) == 20 and not any(c.use_bias for c in convs)
    names = [l.name for l in backbone.layers]
    assert len(names) == len(set(names))
    for n in ("conv1", "bn1", "layer1_0_conv1", "layer2_0_downsample_conv", "layer4_1_bn2"):
        assert n in names


def test_resnet18_symmetric_padding() -> None:
    """conv1 must equal a 7x7/2 convolution with PyTorch's symmetric padding of 3."""
    backbone = resnet18()
    x = _images(1, 33, 34, 3)
    conv1 = keras.Model(backbone.input, backbone.get_layer("conv1").output)
    ref = tf.nn.conv2d(
        x, backbone.get_layer("conv1").kernel, 2, [[0, 0], [3, 3], [3, 3], [0, 0]]
    )
    np.testing.assert_allclose(conv1(x).numpy(), ref.numpy(), atol=1e-5)


def test_full_model_param_count(model: keras.Model) -> None:
    assert _trainable(model) == FULL_TRAINABLE_1x512_3CLS
    eight = build_cutpaste_model(num_classes=3, head_widths=(512,) * 8)
    assert _trainable(eight) == FULL_TRAINABLE_8x512_3CLS


def test_output_names_and_shapes_non_square(model: keras.Model) -> None:
    out = model(_images(2, 64, 96, 3), training=False)
    assert set(out) == {"logits", "embedding", "pooled", "feature_map"}
    assert out["logits"].shape == (2, 3)
    assert out["embedding"].shape == (2, 512)
    assert out["pooled"].shape == (2, 512)
    assert out["feature_map"].shape == (2, 2, 3, 512)
    assert out["logits"].dtype == tf.float32
    # Smallest supported input: 32 px -> 1x1 feature map.
    assert model(_images(1, 32, 32, 3), training=False)["feature_map"].shape == (1, 1, 1, 512)


def test_normalisation_is_inside_model(model: keras.Model) -> None:
    norm = model.get_layer("imagenet_normalization")
    assert not norm.trainable_weights
    np.testing.assert_allclose(np.ravel(norm.mean), IMAGENET_MEAN, atol=1e-6)
    np.testing.assert_allclose(np.ravel(norm.variance), np.square(IMAGENET_STD), atol=1e-6)
    x = _images(2, 64, 64, 3)
    out = model(x, training=False)
    for v in out.values():
        assert np.all(np.isfinite(v.numpy()))
    # The backbone must see (x - mean) / std: feed it that by hand and compare.
    manual = (x - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    fmap = model.get_layer("resnet18")(manual, training=False)
    np.testing.assert_allclose(out["feature_map"].numpy(), fmap.numpy(), atol=1e-4, rtol=1e-4)


def test_xla_matches_eager(model: keras.Model) -> None:
    x = tf.constant(_images(2, 64, 64, 3, seed=1))
    eager = model(x, training=False)
    xla = tf.function(lambda z: model(z, training=False), jit_compile=True)(x)
    for key in ("logits", "embedding", "pooled"):  # logits start at 0: the others test more
        np.testing.assert_allclose(xla[key].numpy(), eager[key].numpy(), atol=1e-4)


def test_unknown_backbone_raises() -> None:
    with pytest.raises(ValueError, match="resnet18"):
        build_cutpaste_model(num_classes=2, backbone="vgg16")
    assert "resnet18" in BACKBONES


def test_head_widths_set_embedding_size() -> None:
    out = build_cutpaste_model(num_classes=2, head_widths=(128, 64))(
        _images(2, 64, 64, 3), training=False
    )
    assert out["embedding"].shape == (2, 64) and out["logits"].shape == (2, 2)
    out = build_cutpaste_model(num_classes=4, head_widths=())(
        _images(2, 64, 64, 3), training=False
    )
    assert out["embedding"].shape == out["pooled"].shape == (2, 512)
    np.testing.assert_allclose(out["embedding"].numpy(), out["pooled"].numpy())


def test_projection_head_layers() -> None:
    head = projection_head((16, 8))
    y = head(np.ones((2, 4), np.float32), training=False)
    assert y.shape == (2, 8)
    dense = [l for l in head.layers if isinstance(l, keras.layers.Dense)]
    bns = [l for l in head.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert [d.units for d in dense] == [16, 8] and not any(d.use_bias for d in dense)
    assert all(b.epsilon == 1e-5 and b.momentum == 0.9 for b in bns)
    assert len(bns) == 2


def test_the_authors_head_ends_in_a_linear_embedding() -> None:
    # DROC: eight 512 Dense -> BN -> ReLU layers, then a linear 128 layer that the classifier
    # reads; the linear layer has a bias and no BatchNorm or ReLU after it, so it can go negative.
    head = projection_head((512,) * 8, embedding=128)
    y = head(np.random.default_rng(0).normal(size=(4, 512)).astype(np.float32), training=False)
    assert y.shape == (4, 128) and float(np.min(y)) < 0
    dense = [l for l in head.layers if isinstance(l, keras.layers.Dense)]
    bns = [l for l in head.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert [d.units for d in dense] == [512] * 8 + [128] and len(bns) == 8
    assert dense[-1].use_bias and head.layers[-1] is dense[-1]
    out = build_cutpaste_model(num_classes=3, head_widths=(16,), head_embedding=8)(
        _images(2, 64, 64, 3), training=False)
    assert out["embedding"].shape == (2, 8) and out["logits"].shape == (2, 3)
    assert projection_head((), embedding=8)(np.ones((2, 4), np.float32)).shape == (2, 8)


@pytest.mark.parametrize("init, limit", [("torch", 1 / np.sqrt(512)),
                                         ("glorot_uniform", np.sqrt(6 / (512 + 256)))])
def test_head_init_sets_the_dense_kernel_range(init, limit) -> None:
    # PyTorch's nn.Linear default is uniform in +-1/sqrt(fan_in); Keras' Glorot in
    # +-sqrt(6 / (fan_in + fan_out)). A uniform kernel's variance is limit^2 / 3.
    head = projection_head((256,), init=init)
    head.build((None, 512))
    kernel = [l for l in head.layers if isinstance(l, keras.layers.Dense)][0].kernel.numpy()
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.99 * limit
    assert np.var(kernel) == pytest.approx(limit ** 2 / 3, rel=0.02)
    with pytest.raises(ValueError, match="head_init"):
        projection_head((8,), init="he_normal").build((None, 4))


def test_projection_head_without_batchnorm_has_biased_he_initialised_layers() -> None:
    head = projection_head((256, 256), batchnorm=False)
    x = np.random.default_rng(0).standard_normal((512, 64)).astype(np.float32)
    y = head(x, training=True)
    dense = [l for l in head.layers if isinstance(l, keras.layers.Dense)]
    assert [d.units for d in dense] == [256, 256] and all(d.use_bias for d in dense)
    assert not [l for l in head.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert float(tf.reduce_min(y)) == 0.0  # ReLU last
    # He initialisation keeps the second moment: E[relu(Wx)^2] ~ E[x^2] / 2 * 2 per layer.
    first = np.maximum(x @ dense[0].kernel.numpy(), 0)
    assert np.mean(first ** 2) == pytest.approx(np.mean(x ** 2), rel=0.2)


def test_logits_float32_under_mixed_precision() -> None:
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        m = build_cutpaste_model(num_classes=2, head_widths=(32,))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    out = m(_images(1, 32, 32, 3), training=False)
    assert all(v.dtype == tf.float32 for v in out.values())


def test_default_head_is_one_layer_and_the_classifier_starts_at_zero() -> None:
    model = build_cutpaste_model(num_classes=3, input_shape=(64, 64, 3))
    dense = [l for l in model.get_layer("head").layers if isinstance(l, keras.layers.Dense)]
    assert [d.units for d in dense] == [512]
    out = model(_images(4, 64, 64, 3), training=True)
    # Logits 0 for every image: the first loss is ln 3 and its gradient carries only the task.
    np.testing.assert_array_equal(out["logits"].numpy(), 0.0)
    assert np.std(out["embedding"].numpy()) > 0.1


def test_input_standardization_makes_the_features_blind_to_the_lamp() -> None:
    """A 20 % darker or 30 % more contrasted image gives (nearly) the same features with the
    option, clearly other ones without it; no weights are added."""
    rng = np.random.default_rng(0)
    x = (0.2 + 0.6 * rng.random((2, 32, 48, 3))).astype(np.float32)
    lamp = [x * 0.8, 0.5 + (x - 0.5) * 1.3]
    blind = build_cutpaste_model(3, head_widths=(16,), input_shape=(32, 48, 3),
                                 input_standardization=True)
    plain = build_cutpaste_model(3, head_widths=(16,), input_shape=(32, 48, 3))
    assert len(blind.weights) == len(plain.weights)
    base = blind(x)["pooled"].numpy()
    for other in lamp:
        # Only the epsilon of the standardisation's spread tells the two apart.
        assert np.abs(blind(other)["pooled"].numpy() - base).max() < 0.02 * np.abs(base).mean()
        assert np.abs(plain(other)["pooled"].numpy() - plain(x)["pooled"].numpy()).max() > 0.05
    standardized = blind.get_layer("input_standardization")(x).numpy()
    luma = standardized @ np.array([0.2989, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(luma.mean(axis=(1, 2)), 0.5 * 0.9999, atol=1e-3)
    np.testing.assert_allclose(luma.std(axis=(1, 2)), 0.2, rtol=0.01)
