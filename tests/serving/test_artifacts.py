"""Artifacts survive a process killed mid-write, and nothing a user hands in is unpickled.

The kill tests run the library in a subprocess that SIGKILLs itself in the middle of a write
(after half the bytes of a file, or after a checkpoint's data but before its index entry), then
check in this process that the previous artifact is intact and that a rerun carries on.
"""

import ast
import os
import pathlib
import pickle
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from cutpaste_tf import density, files
from cutpaste_tf.config import TrainConfig
from cutpaste_tf.models import build_cutpaste_model
from cutpaste_tf.serving import savedmodel
from cutpaste_tf.training import train

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _run_and_get_killed(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    return result


# Replaces GFile.write so that the process writes half of what it was given, then dies.
_DIE_HALFWAY = """
import os, signal, sys
import tensorflow as tf
_write = tf.io.gfile.GFile.write
def _half_then_die(self, data):
    _write(self, data[: len(data) // 2])
    self.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_density_killed_mid_write_leaves_the_previous_file(tmp_path):
    path = str(tmp_path / "density.npz")
    rng = np.random.default_rng(0)
    previous = density.fit_density("gde", rng.normal(size=(30, 64)))
    density.save_density(previous, path)
    _run_and_get_killed(_DIE_HALFWAY + """
import numpy as np
from cutpaste_tf import density
new = density.fit_density("gde", np.random.default_rng(1).normal(size=(30, 64)) + 5.0)
tf.io.gfile.GFile.write = _half_then_die
density.save_density(new, sys.argv[1])
""", path)
    loaded = density.load_density(path)
    np.testing.assert_array_equal(loaded.mean.numpy(), previous.mean.numpy())
    # The half-written temporary is what the kill left: proof it died mid-write.
    leftovers = [n for n in os.listdir(tmp_path) if n.startswith("density.npz.tmp-")]
    assert len(leftovers) == 1
    assert 0 < os.path.getsize(tmp_path / leftovers[0]) < os.path.getsize(path)


def test_results_killed_mid_write_leave_the_previous_file(tmp_path):
    path = str(tmp_path / "results.json")
    files.write_json(path, {"auroc": 0.9, "rows": list(range(1000))})
    _run_and_get_killed(_DIE_HALFWAY + """
from cutpaste_tf import files
tf.io.gfile.GFile.write = _half_then_die
files.write_json(sys.argv[1], {"auroc": 0.1, "rows": list(range(2000))})
""", path)
    assert files.read_json(path) == {"auroc": 0.9, "rows": list(range(1000))}


SMALL = dict(image_size=(32, 32), batch_size=6, epochs=1, log_every=1, checkpoint_every=2,
             steps_per_epoch=6)


def _model():
    tf.keras.utils.set_random_seed(0)
    return build_cutpaste_model(3, head_widths=(16,), input_shape=(32, 32, 3))


def _batches(seen=None):
    rng = np.random.default_rng(0)
    while True:
        if seen is not None:
            seen.append(1)
        views = rng.random((6, 32, 32, 3), dtype=np.float32)
        yield tf.constant(views), tf.constant(np.repeat(np.arange(3, dtype=np.int32), 2))


def test_checkpoint_killed_before_it_is_recorded_resumes_from_the_previous_one(tmp_path):
    # The subprocess trains, saves ckpt-2, writes ckpt-4's files and is killed just before the
    # `checkpoint` index file would name ckpt-4.
    model_dir = str(tmp_path)
    _run_and_get_killed("""
import os, signal, sys
import numpy as np
import tensorflow as tf
from tensorflow.python.checkpoint import checkpoint_management as cm
from cutpaste_tf.training import train
from cutpaste_tf.config import TrainConfig
from cutpaste_tf.models import build_cutpaste_model

_record = cm.update_checkpoint_state_internal
def _die_before_ckpt_4(save_dir, model_checkpoint_path, *args, **kwargs):
    if model_checkpoint_path.endswith("ckpt-4"):
        os.kill(os.getpid(), signal.SIGKILL)
    return _record(save_dir, model_checkpoint_path, *args, **kwargs)
cm.update_checkpoint_state_internal = _die_before_ckpt_4

config = TrainConfig(image_size=(32, 32), batch_size=6, epochs=1, log_every=1,
                     checkpoint_every=2, steps_per_epoch=6)
tf.keras.utils.set_random_seed(0)
model = build_cutpaste_model(3, head_widths=(16,), input_shape=(32, 32, 3))
def batches():
    rng = np.random.default_rng(0)
    while True:
        views = rng.random((6, 32, 32, 3), dtype=np.float32)
        yield tf.constant(views), tf.constant(np.repeat(np.arange(3, dtype=np.int32), 2))
train.train(model, batches(), config, sys.argv[1], verbose=False)
""", model_dir)
    ckpt_dir = tmp_path / "checkpoints"
    assert (ckpt_dir / "ckpt-4.index").exists()  # written, but not valid: not in the index file
    assert train.restore_step(model_dir) == 2
    assert tf.train.latest_checkpoint(str(ckpt_dir)).endswith("ckpt-2")

    # Rerunning resumes from step 2, draws only the 4 missing batches and finishes.
    seen = []
    result = train.train(_model(), _batches(seen), TrainConfig(**SMALL), model_dir, verbose=False)
    assert len(seen) == 4 and result["step"] == 6
    assert train.restore_step(model_dir) == 6
    fresh = _model()
    train.restore_weights(fresh, model_dir)  # the rewritten ckpt-4 and ckpt-6 load
    assert all(np.all(np.isfinite(w.numpy())) for w in fresh.weights)


def test_export_replace_killed_between_renames_is_recovered(tmp_path, monkeypatch):
    # replace_dir moves the old version aside, then the new one in. A failure (or kill) in
    # between leaves no version dir; the next replace or load puts the old one back.
    final, new = tmp_path / "washer" / "1", tmp_path / "washer" / ".tmp-1"
    final.mkdir(parents=True)
    (final / "saved_model.pb").write_text("old")
    new.mkdir()
    (new / "saved_model.pb").write_text("new")
    rename, calls = tf.io.gfile.rename, []

    def second_rename_fails(src, dst, overwrite=False):
        calls.append(src)
        if len(calls) == 2:
            raise OSError("killed")
        return rename(src, dst, overwrite)

    monkeypatch.setattr(tf.io.gfile, "rename", second_rename_fails)
    with pytest.raises(OSError, match="killed"):
        files.replace_dir(str(new), str(final))
    monkeypatch.undo()
    assert not final.exists()
    assert files.recover_dir(str(final))
    assert (final / "saved_model.pb").read_text() == "old"
    assert sorted(os.listdir(final.parent)) == [".tmp-1", "1"]
    files.replace_dir(str(new), str(final))
    assert (final / "saved_model.pb").read_text() == "new"
    assert os.listdir(final.parent) == ["1"]


def test_export_load_recovers_a_set_aside_version(tmp_path):
    module = tf.Module()
    module.double = tf.function(lambda x: 2.0 * x, input_signature=[tf.TensorSpec([], tf.float32)])
    final = tmp_path / "washer" / "1"
    tf.saved_model.save(module, str(final))
    os.rename(final, str(final) + ".old-deadbeef")  # what a kill between the renames leaves
    loaded = savedmodel.load(str(final))
    assert float(loaded.double(tf.constant(2.0))) == 4.0
    assert os.listdir(final.parent) == ["1"]


def test_non_finite_weights_are_never_checkpointed(tmp_path):
    # BatchNorm's moving variance is not used by a training-mode step, so a NaN there leaves
    # the loss finite; the check before each save still catches it and keeps ckpt-2.
    model = _model()
    bn = next(v for v in model.variables if "moving_variance" in (v.path or v.name))

    def poisoned():
        for i, batch in enumerate(_batches()):
            if i == 2:
                bn.assign(tf.fill(bn.shape, float("nan")))
            yield batch

    with pytest.raises(train.TrainingError, match=r"non-finite values in 1 variable\(s\) at step 4 "
                                                  r".*moving_variance.*ckpt-2"):
        train.train(model, poisoned(), TrainConfig(**SMALL), str(tmp_path), verbose=False)
    assert train.restore_step(str(tmp_path)) == 2


# ------------------------------------------------------------------------------------------
# Safe loading: an audit of the library's source.

_UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "joblib", "shelve", "marshal",
                   "cloudpickle"}


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            yield name, {k.arg: k.value for k in node.keywords}, node


# The one exception: CIFAR-10's python version is a set of pickles, read by a restricted
# unpickler (Python docs, "Restricting Globals") that resolves only these globals.
_PICKLE_MODULE = "cutpaste_tf/data/cifar10.py"
_PICKLE_NAMES = {"Unpickler", "UnpicklingError"}
_PICKLE_WHITELIST = {("numpy.core.multiarray", "_reconstruct"),
                     ("numpy._core.multiarray", "_reconstruct"), ("numpy", "ndarray"),
                     ("numpy", "dtype"), ("_codecs", "encode")}


def test_the_one_pickle_user_subclasses_unpickler_with_a_whitelist():
    tree = ast.parse((ROOT / _PICKLE_MODULE).read_text())
    used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
            and getattr(node.value, "id", "") == "pickle"}
    assert used == _PICKLE_NAMES  # never pickle.load / loads / Unpickler(...).load directly
    from cutpaste_tf.data import cifar10
    assert set(cifar10.ALLOWED_GLOBALS) == _PICKLE_WHITELIST
    assert cifar10.SafeUnpickler.find_class is not pickle.Unpickler.find_class


@pytest.mark.parametrize("path", sorted(
    str(p.relative_to(ROOT)) for d in ("cutpaste_tf", "launch") for p in (ROOT / d).rglob("*.py")))
def test_no_unsafe_deserialisation_in_the_library(path):
    tree = ast.parse((ROOT / path).read_text())
    unsafe = _UNSAFE_MODULES - {"pickle"} if path == _PICKLE_MODULE else _UNSAFE_MODULES
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not {a.name.split(".")[0] for a in node.names} & unsafe, path
        if isinstance(node, ast.ImportFrom):
            assert (node.module or "").split(".")[0] not in _UNSAFE_MODULES, path
    for name, kwargs, node in _calls(tree):
        where = f"{path}:{node.lineno}"
        assert name not in ("eval", "exec", "enable_unsafe_deserialization"), where
        if name == "load" and isinstance(node.func, ast.Attribute) and getattr(
                node.func.value, "id", "") in ("np", "numpy"):
            value = kwargs.get("allow_pickle")
            assert isinstance(value, ast.Constant) and value.value is False, (
                f"{where}: np.load without allow_pickle=False")
        if "safe_mode" in kwargs:
            value = kwargs["safe_mode"]
            assert not (isinstance(value, ast.Constant) and value.value is False), where
        if name == "load" and getattr(node.func, "value", None) is not None and getattr(
                node.func.value, "id", "") == "yaml":
            raise AssertionError(f"{where}: yaml.load")
