"""The training loop: loss, L2 in TensorFlow's sense, cosine schedule, checkpoints and resume."""

import math
import os

import numpy as np
import pytest
import tensorflow as tf

from cutpaste_tf.config import TrainConfig
from cutpaste_tf.models import build_cutpaste_model
from cutpaste_tf.training import train

SMALL = dict(image_size=(32, 32), batch_size=6, epochs=1, log_every=1, checkpoint_every=2)


def _batches(config, seed=0):
    rng = np.random.default_rng(seed)
    while True:
        views = rng.random((config.batch_size, *config.image_size, 3), dtype=np.float32)
        labels = np.repeat(np.arange(config.num_views, dtype=np.int32), config.sources_per_batch)
        yield tf.constant(views), tf.constant(labels)


def _model(config):
    tf.keras.utils.set_random_seed(0)
    return build_cutpaste_model(config.num_classes, head_widths=(16,),
                                input_shape=(*config.image_size, 3))


def test_cosine_schedule_is_one_cycle_over_all_steps():
    config = TrainConfig(epochs=4, steps_per_epoch=25)
    lr = train.make_schedule(config)
    assert float(lr(0)) == pytest.approx(0.03)
    assert float(lr(50)) == pytest.approx(0.015, rel=1e-5)
    assert float(lr(100)) == pytest.approx(0.0, abs=1e-9)
    assert float(lr(25)) == pytest.approx(0.03 * 0.5 * (1 + math.cos(math.pi / 4)), rel=1e-5)
    opt = train.make_optimizer(config)
    assert float(opt.learning_rate) == pytest.approx(0.03)
    assert float(opt.momentum) == pytest.approx(0.9)


def test_l2_penalty_is_half_sum_of_squares():
    variables = [tf.Variable([[1.0, 2.0]]), tf.Variable([3.0])]
    assert float(train.l2_penalty(variables)) == pytest.approx((1 + 4 + 9) / 2)


def test_train_step_loss_is_xent_plus_weight_decay_times_l2():
    config = TrainConfig(steps_per_epoch=1, weight_decay=1e-2, **SMALL)
    model = _model(config)
    views, labels = next(_batches(config))
    before = float(train.l2_penalty(model.trainable_variables))
    opt = train.make_optimizer(config)
    opt.build(model.trainable_variables)
    metrics = train.make_train_step(model, opt, config)(views, labels)
    assert float(metrics["l2"]) == pytest.approx(before, rel=1e-5)
    assert float(metrics["loss"]) == pytest.approx(
        float(metrics["xent"]) + 1e-2 * before, rel=1e-5)
    assert 0.0 <= float(metrics["accuracy"]) <= 1.0
    assert float(train.l2_penalty(model.trainable_variables)) != pytest.approx(before)


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

    model = _model(config)
    opt = train.make_optimizer(config)
    opt.build(model.trainable_variables)
    step = train.make_train_step(model, opt, config)
    it = batches()
    losses = [float(step(*next(it))["xent"]) for _ in range(30)]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_checkpoints_resume_and_finish_at_the_planned_step(tmp_path):
    model_dir = str(tmp_path)
    first = TrainConfig(steps_per_epoch=4, **SMALL)
    model = _model(first)
    result = train.train(model, _batches(first), first, model_dir, verbose=False)
    assert result["step"] == 4 and math.isfinite(result["loss"])
    assert train.restore_step(model_dir) == 4
    weights = [w.numpy() for w in model.weights]

    # A longer plan in the same dir resumes at step 4 and stops at 6.
    longer = TrainConfig(steps_per_epoch=6, **SMALL)
    resumed = _model(longer)
    seen = []

    def counting():
        for batch in _batches(longer):
            seen.append(1)
            yield batch

    train.train(resumed, counting(), longer, model_dir, verbose=False)
    assert len(seen) == 2 and train.restore_step(model_dir) == 6
    ckpts = tf.train.get_checkpoint_state(os.path.join(model_dir, "checkpoints"))
    assert ckpts.model_checkpoint_path.endswith("ckpt-6")

    # restore_weights gives back exactly the trained weights.
    fresh = _model(first)
    assert train.restore_weights(fresh, model_dir).endswith("ckpt-6")
    np.testing.assert_array_equal(fresh.weights[0].numpy(), resumed.weights[0].numpy())
    assert not np.array_equal(fresh.weights[0].numpy(), weights[0])


def test_finished_run_does_not_train_again(tmp_path):
    config = TrainConfig(steps_per_epoch=2, **SMALL)
    train.train(_model(config), _batches(config), config, str(tmp_path), verbose=False)

    def never():
        raise AssertionError("a finished run must not ask for data")
        yield

    result = train.train(_model(config), never(), config, str(tmp_path), verbose=False)
    assert result["step"] == 2


def test_non_finite_loss_stops_with_the_last_good_checkpoint(tmp_path):
    config = TrainConfig(steps_per_epoch=6, **SMALL)

    def poisoned():
        for i, (views, labels) in enumerate(_batches(config)):
            if i >= 3:
                views = views * np.float32("nan")
            yield views, labels

    with pytest.raises(train.TrainingError, match=r"non-finite.*step 4.*ckpt-2"):
        train.train(_model(config), poisoned(), config, str(tmp_path), verbose=False)
    assert train.restore_step(str(tmp_path)) == 2


def test_tensorboard_logs_are_written(tmp_path):
    config = TrainConfig(steps_per_epoch=2, **SMALL)
    train.train(_model(config), _batches(config), config, str(tmp_path), verbose=False)
    logs = tf.io.gfile.glob(os.path.join(str(tmp_path), "logs", "train", "events.out.tfevents.*"))
    assert logs
    tags = set()
    for event in tf.compat.v1.train.summary_iterator(logs[0]):
        tags.update(v.tag for v in event.summary.value)
    assert {"train/loss", "train/accuracy", "train/learning_rate"} <= tags
    assert any(t.startswith("views/0_normal") for t in tags)
    assert any(t.startswith("views/2_scar") for t in tags)


def test_two_stage_run_resumes_across_the_stage_boundary(tmp_path, capsys):
    # 2 head-only steps, then 2 all-layer steps with frozen backbone batch norm; the run dies
    # in step 3, just after the boundary checkpoint, and a restart finishes stage 2.
    config = TrainConfig(task="cutpaste", image_size=(32, 32), batch_size=4, head_epochs=1,
                         epochs=1, steps_per_epoch=2, learning_rate=0.01, freeze_batchnorm=True,
                         log_every=1, checkpoint_every=100)
    model, model_dir = _model(config), str(tmp_path)
    backbone = {v.path for v in model.get_layer("resnet18").weights}
    stats = {v.path for v in model.get_layer("resnet18").weights if "moving" in v.path}

    def dies_in_step_3():
        batches = _batches(config)
        for _ in range(2):
            yield next(batches)
        raise KeyboardInterrupt

    before = {v.path: v.numpy() for v in model.weights}
    with pytest.raises(KeyboardInterrupt):
        train.train(model, dies_in_step_3(), config, model_dir, verbose=False)
    assert train.restore_step(model_dir) == 2  # the stage boundary
    restarted = _model(config)
    train.restore_weights(restarted, model_dir)
    at_boundary = {v.path: v.numpy() for v in restarted.weights}
    changed = {k for k in before if not np.array_equal(before[k], at_boundary[k])}
    assert changed and not changed & backbone  # stage 1: the head only

    capsys.readouterr()
    train.train(restarted, _batches(config, seed=1), config, model_dir, verbose=False)
    assert "Resuming from step 2 of 4" in capsys.readouterr().out
    assert train.restore_step(model_dir) == 4
    after = {v.path: v.numpy() for v in restarted.weights}
    changed = {k for k in before if not np.array_equal(at_boundary[k], after[k])}
    assert changed & (backbone - stats)  # stage 2 trains the backbone ...
    assert not changed & stats  # ... with its batch norm statistics frozen
    assert float(train.make_schedule(config)(2)) == pytest.approx(0.01)  # stage 2's peak


def test_train_step_reports_accuracy_per_class_and_gradient_norm_per_block():
    config = TrainConfig(task="3way", steps_per_epoch=1, **{**SMALL, "batch_size": 6})
    model = _model(config)
    opt = train.make_optimizer(config)
    opt.build(model.trainable_variables)
    views, labels = next(_batches(config))
    layer4 = [v.numpy() for v in model.trainable_variables if train.block_of(v) == "layer4"]
    metrics = train.make_train_step(model, opt, config)(views, labels)
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
    assert train.block_of(model.get_layer("classifier").kernel) == "classifier"
