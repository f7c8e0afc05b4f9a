"""One train step: the cosine schedule, L2 in TensorFlow's sense, the loss, accuracy per class
and gradient norms per block, and a few steps that learn."""

import math

import numpy as np
import pytest
import tensorflow as tf
from training_samples import SMALL, random_batches, small_model

from cutpaste_tf.config import TrainConfig
from cutpaste_tf.training import step as step_lib


def test_cosine_schedule_is_one_cycle_over_all_steps():
    config = TrainConfig(epochs=4, steps_per_epoch=25)
    lr = step_lib.make_schedule(config)
    assert float(lr(0)) == pytest.approx(0.03)
    assert float(lr(50)) == pytest.approx(0.015, rel=1e-5)
    assert float(lr(100)) == pytest.approx(0.0, abs=1e-9)
    assert float(lr(25)) == pytest.approx(0.03 * 0.5 * (1 + math.cos(math.pi / 4)), rel=1e-5)
    opt = step_lib.make_optimizer(config)
    assert float(opt.learning_rate) == pytest.approx(0.03)
    assert float(opt.momentum) == pytest.approx(0.9)


def test_warmup_rises_linearly_then_the_cosine_spans_the_remaining_steps():
    config = TrainConfig(epochs=4, steps_per_epoch=25, warmup_steps=10)
    lr = step_lib.make_schedule(config)
    assert [float(lr(s)) for s in (0, 4, 9)] == pytest.approx([0.003, 0.015, 0.03], rel=1e-5)
    assert float(lr(10)) == pytest.approx(0.03, rel=1e-5)
    assert float(lr(55)) == pytest.approx(0.015, rel=1e-5)  # half-way through the 90 left
    assert float(lr(100)) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="warmup_steps"):
        TrainConfig(epochs=1, steps_per_epoch=10, warmup_steps=10)


def test_l2_penalty_is_half_sum_of_squares():
    variables = [tf.Variable([[1.0, 2.0]]), tf.Variable([3.0])]
    assert float(step_lib.l2_penalty(variables)) == pytest.approx((1 + 4 + 9) / 2)


def test_train_step_loss_is_xent_plus_weight_decay_times_l2():
    config = TrainConfig(steps_per_epoch=1, weight_decay=1e-2, **SMALL)
    model = small_model(config)
    views, labels = next(random_batches(config))
    before = float(step_lib.l2_penalty(model.trainable_variables))
    opt = step_lib.make_optimizer(config)
    opt.build(model.trainable_variables)
    metrics = step_lib.make_train_step(model, opt, config)(views, labels)
    assert float(metrics["l2"]) == pytest.approx(before, rel=1e-5)
    assert float(metrics["loss"]) == pytest.approx(
        float(metrics["xent"]) + 1e-2 * before, rel=1e-5)
    assert 0.0 <= float(metrics["accuracy"]) <= 1.0
    assert float(step_lib.l2_penalty(model.trainable_variables)) != pytest.approx(before)


def test_training_lowers_the_loss_on_a_learnable_task():
    # Label 1 views are bright, label 0 dark: a few steps must separate them.
    config = TrainConfig(task="cutpaste", image_size=(32, 32), batch_size=16, epochs=1,
                         steps_per_epoch=30, learning_rate=0.03, log_every=1, checkpoint_every=100)

    def batches():
        rng = np.random.default_rng(0)
        while True:
            views = rng.random((16, 32, 32, 3), dtype=np.float32) * 0.5
            views[8:] += 0.5
            yield tf.constant(views), tf.constant(np.repeat([0, 1], 8).astype(np.int32))

    model = small_model(config)
    opt = step_lib.make_optimizer(config)
    opt.build(model.trainable_variables)
    step = step_lib.make_train_step(model, opt, config)
    it = batches()
    losses = [float(step(*next(it))["xent"]) for _ in range(30)]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_train_step_reports_accuracy_per_class_and_gradient_norm_per_block():
    config = TrainConfig(task="3way", steps_per_epoch=1, **{**SMALL, "batch_size": 6})
    model = small_model(config)
    opt = step_lib.make_optimizer(config)
    opt.build(model.trainable_variables)
    views, labels = next(random_batches(config))
    layer4 = [v.numpy() for v in model.trainable_variables if step_lib.block_of(v) == "layer4"]
    metrics = step_lib.make_train_step(model, opt, config)(views, labels)
    per_class = metrics["accuracy_per_class"].numpy()
    assert per_class.shape == (3,)
    # Balanced classes: the overall accuracy is the mean of the per-class ones.
    assert float(metrics["accuracy"]) == pytest.approx(per_class.mean())
    blocks = {k.split("/", 1)[1] for k in metrics if k.startswith("grad_norm/")}
    assert blocks == {"stem", "layer1", "layer2", "layer3", "layer4", "head", "classifier"}
    # The classifier starts at zero, so on the first step the cross-entropy's gradient reaches
    # only the classifier; layer4 gets just the L2 term's, weight_decay * w.
    assert float(metrics["grad_norm/classifier"]) > 0
    expected = config.weight_decay * np.sqrt(sum(np.sum(w ** 2) for w in layer4))
    assert float(metrics["grad_norm/layer4"]) == pytest.approx(expected, rel=1e-4)
    assert step_lib.block_of(model.get_layer("classifier").kernel) == "classifier"
