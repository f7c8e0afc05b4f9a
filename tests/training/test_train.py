"""The training loop: checkpoints and resume, a non-finite loss, TensorBoard logs, two stages
(one step's loss, L2 and schedule: test_step.py)."""

import math
import os

import numpy as np
import pytest
import tensorflow as tf
from training_samples import SMALL, random_batches, small_model

from cutpaste_tf.config import TrainConfig
from cutpaste_tf.training import step as step_lib
from cutpaste_tf.training import train


def test_checkpoints_resume_and_finish_at_the_planned_step(tmp_path):
    model_dir = str(tmp_path)
    first = TrainConfig(steps_per_epoch=4, **SMALL)
    model = small_model(first)
    result = train.train(model, random_batches(first), first, model_dir, verbose=False)
    assert result["step"] == 4 and math.isfinite(result["loss"])
    assert train.restore_step(model_dir) == 4
    weights = [w.numpy() for w in model.weights]

    # A longer plan in the same dir resumes at step 4 and stops at 6.
    longer = TrainConfig(steps_per_epoch=6, **SMALL)
    resumed = small_model(longer)
    seen = []

    def counting():
        for batch in random_batches(longer):
            seen.append(1)
            yield batch

    train.train(resumed, counting(), longer, model_dir, verbose=False)
    assert len(seen) == 2 and train.restore_step(model_dir) == 6
    ckpts = tf.train.get_checkpoint_state(os.path.join(model_dir, "checkpoints"))
    assert ckpts.model_checkpoint_path.endswith("ckpt-6")

    # restore_weights gives back exactly the trained weights.
    fresh = small_model(first)
    assert train.restore_weights(fresh, model_dir).endswith("ckpt-6")
    np.testing.assert_array_equal(fresh.weights[0].numpy(), resumed.weights[0].numpy())
    assert not np.array_equal(fresh.weights[0].numpy(), weights[0])


def test_finished_run_does_not_train_again(tmp_path):
    config = TrainConfig(steps_per_epoch=2, **SMALL)
    train.train(small_model(config), random_batches(config), config, str(tmp_path), verbose=False)

    def never():
        raise AssertionError("a finished run must not ask for data")
        yield

    result = train.train(small_model(config), never(), config, str(tmp_path), verbose=False)
    assert result["step"] == 2


def test_non_finite_loss_stops_with_the_last_good_checkpoint(tmp_path):
    config = TrainConfig(steps_per_epoch=6, **SMALL)

    def poisoned():
        for i, (views, labels) in enumerate(random_batches(config)):
            if i >= 3:
                views = views * np.float32("nan")
            yield views, labels

    with pytest.raises(train.TrainingError, match=r"non-finite.*step 4.*ckpt-2"):
        train.train(small_model(config), poisoned(), config, str(tmp_path), verbose=False)
    assert train.restore_step(str(tmp_path)) == 2


def test_tensorboard_logs_are_written(tmp_path):
    config = TrainConfig(steps_per_epoch=2, **SMALL)
    train.train(small_model(config), random_batches(config), config, str(tmp_path), verbose=False)
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
    model, model_dir = small_model(config), str(tmp_path)
    backbone = {v.path for v in model.get_layer("resnet18").weights}
    stats = {v.path for v in model.get_layer("resnet18").weights if "moving" in v.path}

    def dies_in_step_3():
        batches = random_batches(config)
        for _ in range(2):
            yield next(batches)
        raise KeyboardInterrupt

    before = {v.path: v.numpy() for v in model.weights}
    with pytest.raises(KeyboardInterrupt):
        train.train(model, dies_in_step_3(), config, model_dir, verbose=False)
    assert train.restore_step(model_dir) == 2  # the stage boundary
    restarted = small_model(config)
    train.restore_weights(restarted, model_dir)
    at_boundary = {v.path: v.numpy() for v in restarted.weights}
    changed = {k for k in before if not np.array_equal(before[k], at_boundary[k])}
    assert changed and not changed & backbone  # stage 1: the head only

    capsys.readouterr()
    train.train(restarted, random_batches(config, seed=1), config, model_dir, verbose=False)
    assert "Resuming from step 2 of 4" in capsys.readouterr().out
    assert train.restore_step(model_dir) == 4
    after = {v.path: v.numpy() for v in restarted.weights}
    changed = {k for k in before if not np.array_equal(at_boundary[k], after[k])}
    assert changed & (backbone - stats)  # stage 2 trains the backbone ...
    assert not changed & stats  # ... with its batch norm statistics frozen
    assert float(step_lib.make_schedule(config)(2)) == pytest.approx(0.01)  # stage 2's peak
