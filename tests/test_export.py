"""SavedModel export: signatures, in-graph preprocessing, and a fresh-process round trip."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from cutpaste_tf import data, evaluate, export
from cutpaste_tf.config import DensityConfig
from cutpaste_tf.models import build_cutpaste_model

ROOT = pathlib.Path(__file__).resolve().parents[1]
TESTDATA = str(ROOT / "testdata")
SIZE = (48, 64)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A small model + GDE exported once; returns (export path, in-process test scores, files)."""
    washer = data.index_mvtec(TESTDATA, "washer")
    tf.keras.utils.set_random_seed(0)
    model = build_cutpaste_model(3, head_widths=(32,), input_shape=(*SIZE, 3))
    # Calibrate batch-norm statistics a little so inference outputs are well scaled.
    batch = next(iter(data.eval_dataset(washer.train_files[:16], SIZE, 16)))
    for _ in range(3):
        model(batch, training=True)
    estimator = evaluate.fit_density(model, washer, SIZE, DensityConfig())
    paths = list(washer.test_files[::4])
    scores = evaluate.score_images(model, estimator, paths, SIZE, "pooled")
    scorer = export.AnomalyScorer(model, estimator, SIZE, "pooled")
    out = tmp_path_factory.mktemp("export")
    path = export.export(scorer, str(out), "washer", version=3, metadata={"note": "test"})
    return path, scores, paths


def test_layout_and_metadata(exported):
    path, _, _ = exported
    assert path.endswith(os.path.join("washer", "3"))
    assert os.path.exists(os.path.join(path, "saved_model.pb"))
    siblings = os.listdir(os.path.dirname(path))
    assert siblings == ["3"]  # no temporary folders left behind for TF Serving to trip on
    meta = export.read_metadata(path)
    assert meta["image_size"] == list(SIZE) and meta["feature"] == "pooled"
    assert meta["note"] == "test"


def test_fresh_process_scores_equal_in_process_evaluation(exported):
    path, scores, paths = exported
    script = f"""
import json, numpy as np, tensorflow as tf
m = tf.saved_model.load({path!r})
out = {{}}
for name in ("serving_default", "serve_float"):
    fn = m.signatures[name]
    vals = []
    for p in {paths!r}:
        img = tf.io.decode_png(tf.io.read_file(p), channels=3)
        if name == "serve_float":
            img = tf.cast(img, tf.float32) / 255.0
        vals.append(float(fn(images=img[None])["score"][0]))
    out[name] = vals
print("SCORES" + json.dumps(out))
"""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(l for l in result.stdout.splitlines() if l.startswith("SCORES"))
    served = json.loads(line[len("SCORES"):])
    for name, values in served.items():
        np.testing.assert_allclose(values, scores, atol=1e-4, rtol=1e-5, err_msg=name)


def test_batch_of_any_size_and_embedding_output(exported):
    path, scores, paths = exported
    loaded = export.load(path)
    images = tf.stack([tf.io.decode_png(tf.io.read_file(p), channels=3) for p in paths[:3]])
    out = loaded.signatures["serving_default"](images=images)
    assert out["score"].shape == (3,) and out["embedding"].shape == (3, 512)
    np.testing.assert_allclose(out["score"].numpy(), scores[:3], atol=1e-4)
    # A differently sized image is resized inside the graph.
    small = tf.image.resize(images[:1], (50, 70)).numpy().astype(np.uint8)
    assert np.isfinite(loaded.signatures["serving_default"](images=small)["score"].numpy()).all()


def test_saved_model_cli_lists_both_signatures(exported):
    path, _, _ = exported
    cli = shutil.which("saved_model_cli") or os.path.join(os.path.dirname(sys.executable),
                                                          "saved_model_cli")
    assert os.path.exists(cli), "saved_model_cli is installed with tensorflow"
    result = subprocess.run([cli, "show", "--dir", path, "--all"], capture_output=True,
                            text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-2000:]
    for text in ("signature_def['serving_default']", "signature_def['serve_float']",
                 "dtype: DT_UINT8", "outputs['score']", "outputs['embedding']"):
        assert text in result.stdout, text


def test_bad_version_and_missing_model():
    with pytest.raises(ValueError, match="positive integer"):
        export.export(None, "/tmp/x", "m", version=0)
    with pytest.raises(FileNotFoundError, match="no SavedModel"):
        export.load("/nonexistent/model/1")
