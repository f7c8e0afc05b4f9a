"""The training loop of the proxy-task classifier (Appendix A.1), with checkpoints, resume and
TensorBoard. One step (schedule, optimizer, L2, stages) is :mod:`cutpaste_tf.training.step`.

Checkpoints go through ``tf.train.CheckpointManager``: TensorFlow writes a checkpoint's data
and index under a temporary prefix, merges them under the final name, and only then rewrites the
small ``checkpoints/checkpoint`` state file (itself atomically) to point at it. A checkpoint is
valid once that file names it, so a run killed mid-save resumes from the previous one, and the
next save overwrites the half-written files. Before every save the loss and every model and
optimizer variable must be finite: a diverged run stops with :class:`TrainingError` and the
last good checkpoint stays the newest.

With two-stage fine-tuning (Appendix A.4) the global step decides the stage. A checkpoint is
saved at the stage boundary, and a restart at any step resumes in the right stage with the right
trainable set and learning rate.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from typing import Any, Callable, Iterator, Optional

import keras
import numpy as np
import tensorflow as tf

from cutpaste_tf import console, files, rundir
from cutpaste_tf.config import TASK_VIEWS, TrainConfig
from cutpaste_tf.training import learning
from cutpaste_tf.training import step as step_lib


class TrainingError(RuntimeError):
    """Training cannot continue (for example, the loss stopped being finite)."""


def is_chief(strategy: Optional[tf.distribute.Strategy] = None) -> bool:
    """Whether this process writes checkpoints, logs and results (worker 0 or the chief)."""
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type in (None, "chief"):
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


@dataclasses.dataclass
class _Loop:
    """What the training loop carries from one step to the next."""

    model: keras.Model
    config: TrainConfig
    model_dir: str
    strategy: tf.distribute.Strategy
    chief: bool
    optimizer: keras.optimizers.Optimizer
    checkpoint: tf.train.Checkpoint
    manager: tf.train.CheckpointManager
    latest: Optional[str]  # the checkpoint restored, if any
    save_dir: str  # model_dir on the chief, a scratch folder on other workers
    start: int
    writer: Any
    progress: console.Progress  # Keras' bar on a terminal, plain lines elsewhere
    schedule: Callable  # the optimizer's learning rate, for logging
    names: tuple[str, ...]  # the classes of the task
    curve: list[dict]
    judged: bool  # whether the not-learning check has given its verdict
    warned: bool = False
    window: list[dict] = dataclasses.field(default_factory=list)  # steps since the last log
    last: dict[str, float] = dataclasses.field(default_factory=dict)
    stage: Optional[str] = None
    step_fn: Optional[Callable] = None
    tic: float = 0.0
    tic_step: int = 0


def train(model: keras.Model, batches: Iterator, config: TrainConfig, model_dir: str,
          verbose: bool = True, strategy: Optional[tf.distribute.Strategy] = None,
          progress_every_s: float = 30.0) -> dict[str, float]:
    """Trains ``model`` until ``config.total_steps``, resuming from ``model_dir`` if possible.

    Args:
      model: the CutPaste classifier (dict outputs with ``logits``), built under
        ``strategy.scope()`` when a strategy is given.
      batches: an iterator of batches for :func:`~cutpaste_tf.training.step.make_train_step`;
        it must start at the step that :func:`restore_step` reports for ``model_dir`` (see
        ``train_dataset(start_step=)``).
      config: optimisation settings.
      model_dir: where ``checkpoints/`` and ``logs/train`` go.
      verbose: show the progress (on the chief only): Keras' bar on a terminal, else a plain
        line every ``progress_every_s`` seconds and at the last step (:mod:`cutpaste_tf.console`).
      strategy: a ``tf.distribute`` strategy (default: the current one, i.e. none).
      progress_every_s: seconds between plain progress lines (0: every step).

    Returns:
      The last logged metrics and the step reached.
    """
    loop = _start(model, config, model_dir, strategy or tf.distribute.get_strategy(), verbose,
                  progress_every_s)
    for step in range(loop.start, config.total_steps):
        _run_step(loop, step, batches)
        done = step + 1
        loop.progress.step(done, loop.window[-1])
        save = (done % config.checkpoint_every == 0
                or done in (config.total_steps, config.head_steps))
        if save or done % config.log_every == 0:
            _log(loop, done)
        if save:  # only after the metrics logged above were found finite
            _save(loop, done)
    return _finish(loop)


def _restore(model: keras.Model, config: TrainConfig, model_dir: str,
             strategy: tf.distribute.Strategy, chief: bool) -> dict:
    """The optimizer, checkpoint and manager of a run, restored from its newest checkpoint."""
    # All trainable first: the optimizer holds slots for every trainable variable.
    step_lib.set_stage(model, None, config)
    with strategy.scope():
        optimizer = step_lib.make_optimizer(config)
        optimizer.build(model.trainable_variables)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, rundir.CHECKPOINT_DIR))
    if latest:
        checkpoint.restore(latest).assert_existing_objects_matched()
    # Every worker saves (saving can need collectives); only the chief's copy is kept.
    save_dir = model_dir if chief else os.path.join(
        model_dir, f".worker-{strategy.cluster_resolver.task_id}")
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(save_dir, rundir.CHECKPOINT_DIR),
                                         max_to_keep=3)
    return {"optimizer": optimizer, "checkpoint": checkpoint, "latest": latest,
            "save_dir": save_dir, "manager": manager,
            "start": int(optimizer.iterations.numpy())}


def _start(model: keras.Model, config: TrainConfig, model_dir: str,
           strategy: tf.distribute.Strategy, verbose: bool, progress_every_s: float) -> _Loop:
    """Restores the run and opens its log writer, progress bar and training curve."""
    chief = is_chief(strategy)
    restored = _restore(model, config, model_dir, strategy, chief)
    start, total = restored["start"], config.total_steps
    schedule = step_lib.make_schedule(config)  # the optimizer's, for logging
    writer = (tf.summary.create_file_writer(os.path.join(model_dir, rundir.LOG_DIR)) if chief
              else tf.summary.create_noop_writer())
    if chief and start:  # said even without a progress bar: a resume should never be silent
        print(f"Resuming from step {start} of {total} ({restored['latest']}), "
              f"{step_lib.stage_of(start, config)} stage", flush=True)
    names = TASK_VIEWS[config.task]
    progress = console.Progress(os.path.basename(os.path.normpath(model_dir)), total, start,
                                names, config.batch_size, progress_every_s,
                                enabled=verbose and chief)
    # The curve as far as the restored checkpoint; rows logged after it are redone.
    curve = [r for r in learning.read_curve(model_dir) if r["step"] <= start] if chief else []
    judged = learning.check(curve, total, len(names)) is not None
    return _Loop(model=model, config=config, model_dir=model_dir, strategy=strategy,
                 chief=chief, writer=writer, progress=progress, schedule=schedule, names=names,
                 curve=curve, judged=judged, tic=time.perf_counter(), tic_step=start,
                 **restored)


def _run_step(loop: _Loop, step: int, batches: Iterator) -> None:
    """One train step (a new step function when the stage changes), kept for the next log."""
    config = loop.config
    if step_lib.stage_of(step, config) != loop.stage:
        loop.stage = step_lib.stage_of(step, config)
        step_lib.set_stage(loop.model, loop.stage, config)
        loop.step_fn = step_lib.make_train_step(loop.model, loop.optimizer, config, loop.strategy)
    batch = next(batches)
    if step == loop.start and loop.chief and not config.augment_on_device:
        _log_views(loop.writer, *_local(loop.strategy, batch), step, TASK_VIEWS[config.task])
    loop.window.append(loop.step_fn(*batch))


def _log(loop: _Loop, done: int) -> None:
    """Logs the means over the steps since the last log (a single batch's accuracy is too
    noisy to judge by): TensorBoard, the progress bar, the curve and the not-learning check."""
    window, loop.window = loop.window, []
    means = {k: np.mean([np.asarray(m[k]) for m in window], axis=0) for k in window[0]}
    per_class = [float(v) for v in means.pop("accuracy_per_class")]
    last = loop.last = {k: float(v) for k, v in means.items()}
    if not all(math.isfinite(v) for v in [*last.values(), *per_class]):
        raise TrainingError(
            f"non-finite training metrics at step {done}: {last}; the last good checkpoint is "
            f"{loop.manager.latest_checkpoint or loop.latest or 'none (no checkpoint yet)'}")
    lr = float(loop.schedule(done))
    rate = (done - loop.tic_step) / max(time.perf_counter() - loop.tic, 1e-9)
    loop.tic, loop.tic_step = time.perf_counter(), done
    with loop.writer.as_default(step=done):
        for key, value in last.items():
            tf.summary.scalar(f"train/{key}", value)
        for name, value in zip(loop.names, per_class):
            tf.summary.scalar(f"train/accuracy_{name}", value)
        tf.summary.scalar("train/learning_rate", lr)
        tf.summary.scalar("train/steps_per_second", rate)
    loop.progress.log(done, last["loss"], last["accuracy"], lr)
    loop.curve.append({"step": done, "loss": last["loss"], "xent": last["xent"],
                       "accuracy": last["accuracy"], "accuracy_per_class": per_class,
                       "learning_rate": lr,
                       "grad_norm": {k.split("/", 1)[1]: v for k, v in last.items()
                                     if k.startswith("grad_norm/")}})
    _judge(loop)


def _judge(loop: _Loop) -> None:
    """The not-learning check, once its verdict is due; warns (on the chief) if it failed."""
    if loop.judged:
        return
    verdict = learning.check(loop.curve, loop.config.total_steps, len(loop.names))
    if verdict is not None:
        loop.judged = True
        if not verdict["learned"] and loop.chief:
            _warn(verdict, loop.config.task, loop.model_dir, loop.progress.bar is not None)
            loop.warned = True


def _save(loop: _Loop, done: int) -> None:
    """Saves a checkpoint at step ``done`` after checking every variable is finite, and the
    training curve beside it (on the chief)."""
    bad = _non_finite_variables(checkpoint_variables(loop.model, loop.optimizer))
    if bad:
        raise TrainingError(
            f"non-finite values in {len(bad)} variable(s) at step {done} (e.g. "
            f"{', '.join(bad[:3])}) although the loss is finite; not saved: the last good "
            f"checkpoint is {loop.manager.latest_checkpoint or 'none (no checkpoint yet)'}")
    loop.manager.save(checkpoint_number=done)
    if loop.chief:
        learning.write_curve(loop.model_dir, loop.curve, loop.names)


def _finish(loop: _Loop) -> dict[str, float]:
    """The last check and checkpoint, everything trainable again; the last metrics."""
    total = loop.config.total_steps
    loop.writer.flush()
    if loop.chief and loop.start < total:
        verdict = learning.check(loop.curve, total, len(loop.names))
        if verdict is not None and not loop.warned and not verdict["learned"]:
            _warn(verdict, loop.config.task, loop.model_dir,  # e.g. back at chance by the end
                  loop.progress.bar is not None)
        elif loop.warned and verdict is not None and learning.status(verdict) == "learned late":
            print(("\n" if loop.progress.bar is not None else "")
                  + f"[{os.path.basename(os.path.normpath(loop.model_dir))}] the proxy task "
                  f"learned late: {learning.figures(verdict)}. The run stays marked; more "
                  "steps (--epochs, --steps_per_epoch) would give it time to settle.",
                  file=sys.stderr, flush=True)
    step_lib.set_stage(loop.model, None, loop.config)
    if loop.start >= total and not loop.latest:
        loop.manager.save(checkpoint_number=total)
    if not loop.chief and tf.io.gfile.exists(loop.save_dir):
        files.remove_dir(loop.save_dir)
    return {**loop.last, "step": float(total)}


def _warn(verdict: dict, task: str, model_dir: str, after_bar: bool = False) -> None:
    """Prints :func:`learning.warning` for the category trained in ``model_dir`` (on a line
    of its own after a terminal's progress bar)."""
    print(("\n" if after_bar else "")
          + learning.warning(verdict, task, os.path.basename(os.path.normpath(model_dir))),
          file=sys.stderr, flush=True)


def restore_step(model_dir: str) -> int:
    """The step of the newest complete checkpoint under ``model_dir`` (0 if none)."""
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, rundir.CHECKPOINT_DIR))
    if not latest:
        return 0
    return int(latest.rsplit("-", 1)[-1])


def restore_weights(model: keras.Model, model_dir: str) -> Optional[str]:
    """Loads the newest checkpoint's model weights (no optimizer needed); returns its path."""
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, rundir.CHECKPOINT_DIR))
    if latest:
        tf.train.Checkpoint(model=model).restore(latest).expect_partial()
    return latest


def _local(strategy: tf.distribute.Strategy, batch) -> tuple[tf.Tensor, ...]:
    """The first local replica's part of a (possibly per-replica) batch."""
    return tuple(strategy.experimental_local_results(t)[0] for t in batch)


def checkpoint_variables(model: keras.Model, optimizer) -> list:
    """Every variable a checkpoint holds: the model's (BatchNorm statistics too) and the
    optimizer's (momentum)."""
    return list(model.variables) + list(optimizer.variables)


def _non_finite_variables(variables) -> list[str]:
    """Names of the float variables holding NaN or Inf (one fused check, then names)."""
    floats = [v for v in variables if tf.as_dtype(v.dtype).is_floating]
    if not floats:
        return []
    ok = tf.stack([tf.reduce_all(tf.math.is_finite(v)) for v in floats]).numpy()
    return [getattr(v, "path", None) or v.name for v, good in zip(floats, ok) if not good]


def _log_views(writer, views: tf.Tensor, labels: tf.Tensor, step: int,
               names: tuple[str, ...], per_class: int = 4) -> None:
    """Writes a few training views of each class to TensorBoard: what the network sees."""
    labels = np.asarray(labels)
    with writer.as_default(step=step):
        for label, name in enumerate(names):
            picked = np.flatnonzero(labels == label)[:per_class]
            if picked.size:
                tf.summary.image(f"views/{label}_{name}", tf.gather(views, picked),
                                 max_outputs=per_class)
