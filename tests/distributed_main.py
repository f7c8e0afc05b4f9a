"""Run by tests/launch/test_distribute.py in fresh processes (a strategy needs a fresh runtime).

    python tests/distributed_main.py mirrored <out_dir>
    TF_CONFIG=... python tests/distributed_main.py multi_worker <out_dir>

Trains the CutPaste model for a few steps on the shipped testdata under the strategy and writes
``<out_dir>/result_<task>.json`` (replica agreement, loss) and ``weights_<task>.npy``.
"""

import json
import os
import sys

import numpy as np
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from cutpaste_tf import data as data_lib  # noqa: E402
from cutpaste_tf.config import ModelConfig, RunConfig, TrainConfig  # noqa: E402
from cutpaste_tf.pipeline import build
from cutpaste_tf.training import step as step_lib  # noqa: E402
from cutpaste_tf.training import train  # noqa: E402


def _flat(variables) -> np.ndarray:
    return np.concatenate([np.ravel(v.numpy()) for v in variables])


def _equivalence(strategy) -> float:
    """Max difference between 2 SGD steps on one global batch with and without the strategy,
    for a model without batch norm (where the two must agree)."""
    import keras
    config = TrainConfig(task="cutpaste", image_size=(32, 32), batch_size=8, epochs=1,
                         steps_per_epoch=2, weight_decay=1e-3)
    rng = np.random.default_rng(0)
    views = rng.random((8, 32, 32, 3), dtype=np.float32)
    labels = np.tile(np.array([0, 1], np.int32), 4)

    def model():
        keras.utils.set_random_seed(1)
        x = keras.Input((32, 32, 3))
        h = keras.layers.Dense(4, activation="relu")(keras.layers.Flatten()(x))
        return keras.Model(x, {"logits": keras.layers.Dense(2)(h)})

    results = []
    for strat in (tf.distribute.get_strategy(), strategy):
        with strat.scope():
            net = model()
            opt = step_lib.make_optimizer(config)
            opt.build(net.trainable_variables)
        step = step_lib.make_train_step(net, opt, config, strat)
        ds = tf.data.Dataset.from_tensors((views, labels)).repeat()
        batches = iter(strat.experimental_distribute_dataset(ds))
        for _ in range(2):
            step(*next(batches))
        results.append(_flat(net.trainable_variables))
    return float(np.max(np.abs(results[0] - results[1])))


def main(mode: str, out_dir: str) -> None:
    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        task = "0"
    else:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        task = str(strategy.cluster_resolver.task_id)
    config = RunConfig(
        model=ModelConfig(head_widths=(16,)),
        train=TrainConfig(task="3way", image_size=(32, 32), batch_size=12, epochs=1,
                          steps_per_epoch=3, checkpoint_every=3, log_every=1))
    data = data_lib.index_mvtec(os.path.join(ROOT, "testdata"), "washer")
    with strategy.scope():
        model = build.build_model(config)
    batches = build.training_batches(data, config, strategy)
    last = train.train(model, batches, config.train, os.path.join(out_dir, "model"),
                       verbose=False, strategy=strategy)
    # Each variable's per-replica copies (a MirroredVariable's .values; one copy otherwise).
    tf_vars = [getattr(v, "value", v) for v in model.variables]
    count = len(getattr(tf_vars[0], "values", [None]))
    copies = [_flat([v.values[i] if hasattr(v, "values") else v for v in tf_vars])
              for i in range(count)]
    result = {
        "replicas": strategy.num_replicas_in_sync,
        "loss": last["loss"],
        "replica_copies": len(copies),
        "replica_max_diff": float(max(np.max(np.abs(c - copies[0])) for c in copies)),
        "chief": train.is_chief(strategy),
    }
    if mode == "mirrored":
        result["equivalence_max_diff"] = _equivalence(strategy)
    np.save(os.path.join(out_dir, f"weights_{task}.npy"), copies[0])
    with open(os.path.join(out_dir, f"result_{task}.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
