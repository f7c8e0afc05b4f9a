"""SavedModel export: signatures, in-graph decoding and preprocessing, threshold, anomaly map,
a fresh-process round trip, saved_model_cli, and launch.predict on the export."""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from helpers import CPU_ENV

from cutpaste_tf import data
from cutpaste_tf.config import DensityConfig
from cutpaste_tf.evaluation import evaluate
from cutpaste_tf.models import build_cutpaste_model
from cutpaste_tf.ops import shifts
from cutpaste_tf.serving import savedmodel, tflite

ROOT = pathlib.Path(__file__).resolve().parents[2]
TESTDATA = str(ROOT / "testdata")
SIZE = (48, 64)


def _stand_in_map(images):
    """A cheap stand-in anomaly map (the localisation models provide real ones)."""
    return tf.reduce_mean(tf.abs(images - 0.5), axis=-1)


@pytest.fixture(scope="module")
def built():
    """A small model + GDE + threshold + map: (scorer, test scores, their files, threshold)."""
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
    threshold = float(np.median(scores))
    scorer = savedmodel.AnomalyScorer(model, estimator, SIZE, "pooled", threshold=threshold,
                                  anomaly_map=_stand_in_map)
    return scorer, scores, paths, threshold


@pytest.fixture(scope="module")
def exported(built, tmp_path_factory):
    """The scorer exported once: (export path, in-process test scores, files, threshold)."""
    scorer, scores, paths, threshold = built
    out = tmp_path_factory.mktemp("export")
    path = savedmodel.export(scorer, str(out), "washer", version=3, metadata={"note": "test"})
    return path, scores, paths, threshold


def test_layout_and_metadata(exported):
    path, _, _, threshold = exported
    assert path.endswith(os.path.join("washer", "3"))
    assert os.path.exists(os.path.join(path, "saved_model.pb"))
    siblings = os.listdir(os.path.dirname(path))
    assert siblings == ["3"]  # no temporary folders left behind for TF Serving to trip on
    meta = savedmodel.read_metadata(path)
    assert meta["image_size"] == list(SIZE) and meta["feature"] == "pooled"
    assert meta["note"] == "test" and meta["anomaly_map"] is True
    assert meta["threshold"] == pytest.approx(threshold)
    assert meta["signatures"] == ["serving_default", "serve_uint8", "serve_float"]


def test_fresh_process_scores_equal_in_process_evaluation(exported):
    path, scores, paths, threshold = exported
    script = f"""
import json, numpy as np, tensorflow as tf
m = tf.saved_model.load({path!r})
out = {{}}
for name in ("serving_default", "serve_uint8", "serve_float"):
    fn = m.signatures[name]
    vals, flags, cuts = [], [], []
    for p in {paths!r}:
        raw = tf.io.read_file(p)
        if name == "serving_default":
            res = fn(image_bytes=raw[None])
        else:
            img = tf.io.decode_png(raw, channels=3)
            if name == "serve_float":
                img = tf.cast(img, tf.float32) / 255.0
            res = fn(images=img[None])
        vals.append(float(res["score"][0]))
        flags.append(bool(res["is_anomaly"][0]))
        cuts.append(float(res["threshold"][0]))
    out[name] = [vals, flags, cuts]
print("SCORES" + json.dumps(out))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=CPU_ENV, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(l for l in result.stdout.splitlines() if l.startswith("SCORES"))
    served = json.loads(line[len("SCORES"):])
    assert set(served) == {"serving_default", "serve_uint8", "serve_float"}
    for name, (values, flags, cuts) in served.items():
        np.testing.assert_allclose(values, scores, atol=1e-4, rtol=1e-5, err_msg=name)
        np.testing.assert_allclose(cuts, threshold, rtol=1e-6)
        # Scores within 1e-4 of the threshold could flip; the median sits on an exact score.
        clear = np.abs(np.asarray(values) - threshold) > 1e-3
        assert np.array_equal(np.asarray(flags)[clear], (np.asarray(values) > threshold)[clear])


def test_every_signature_returns_the_image_statistics_of_the_model_input(exported):
    """``image_stats``: what a TF Serving client monitors, equal to the statistics of the
    preprocessed image (cutpaste_tf.ops.shifts.image_statistics) whichever way it is sent."""
    path, _, paths, _ = exported
    loaded = savedmodel.load(path)
    raw = tf.io.read_file(paths[0])
    expected = shifts.image_statistics(data.load_image(tf.constant(paths[0]), SIZE)[None])
    decoded = tf.io.decode_png(raw, channels=3)[None]
    for name, kwargs in [("serving_default", {"image_bytes": raw[None]}),
                         ("serve_uint8", {"images": decoded}),
                         ("serve_float", {"images": tf.cast(decoded, tf.float32) / 255.0})]:
        stats = loaded.signatures[name](**kwargs)["image_stats"].numpy()
        assert stats.shape == (1, len(shifts.STATISTICS)), name
        np.testing.assert_allclose(stats, expected.numpy(), atol=1e-5, err_msg=name)


def test_encoded_batch_of_mixed_sizes_and_anomaly_map_sizes(exported, built, tmp_path):
    path, scores, paths, _ = exported
    loaded = savedmodel.load(path)
    image = tf.io.decode_png(tf.io.read_file(paths[0]), channels=3)
    other = tf.cast(tf.image.resize(image, (50, 70)), tf.uint8)
    other_png = tf.io.encode_png(other)
    out = loaded.signatures["serving_default"](
        image_bytes=tf.stack([tf.io.read_file(paths[0]), other_png]))
    assert out["score"].shape == (2,) and out["embedding"].shape == (2, 512)
    assert out["anomaly_map"].shape == (2, *SIZE)  # encoded inputs: at the model's size
    np.testing.assert_allclose(out["score"][0], scores[0], atol=1e-4)
    # The differently sized PNG scores as its decoded pixels do (PNG is lossless).
    in_process = loaded.signatures["serve_uint8"](images=other[None])
    np.testing.assert_allclose(out["score"][1], in_process["score"][0], atol=1e-4)
    assert in_process["anomaly_map"].shape == (1, 50, 70)  # tensors: at the input's size
    assert np.all(np.isfinite(out["anomaly_map"].numpy()))
    # Served bytes are preprocessed exactly as evaluation preprocesses the same file (a PNG
    # and a JPEG, both resized): the stand-in map is a pixelwise function of the model input.
    for name, encoded in (("other.png", other_png), ("other.jpg", tf.io.encode_jpeg(other))):
        tf.io.write_file(str(tmp_path / name), encoded)
        served = loaded.signatures["serving_default"](image_bytes=encoded[None])
        evaluated = data.load_image(tf.constant(str(tmp_path / name)), SIZE)[None]
        np.testing.assert_array_equal(served["anomaly_map"], _stand_in_map(evaluated), name)
        expected = evaluate.score_images(built[0].model, built[0].density,
                                         [str(tmp_path / name)], SIZE, "pooled")
        np.testing.assert_allclose(served["score"], expected, atol=1e-4, err_msg=name)


def _cli(*args):
    cli = shutil.which("saved_model_cli") or os.path.join(os.path.dirname(sys.executable),
                                                          "saved_model_cli")
    assert os.path.exists(cli), "saved_model_cli is installed with tensorflow"
    return subprocess.run([cli, *args], capture_output=True, text=True, timeout=300, env=CPU_ENV)


def test_saved_model_cli_lists_the_signatures(exported):
    path = exported[0]
    result = _cli("show", "--dir", path, "--all")
    assert result.returncode == 0, result.stderr[-2000:]
    for text in ("signature_def['serving_default']", "signature_def['serve_uint8']",
                 "signature_def['serve_float']", "inputs['image_bytes']", "dtype: DT_STRING",
                 "dtype: DT_UINT8", "outputs['score']", "outputs['is_anomaly']",
                 "outputs['threshold']", "outputs['embedding']", "outputs['anomaly_map']"):
        assert text in result.stdout, text


def test_saved_model_cli_run_scores_a_png(exported, tmp_path):
    """The session-based loader (as in TF Serving) restores every variable and scores a file."""
    path, scores, paths, _ = exported
    npy = tmp_path / "image.npy"
    np.save(npy, np.array([pathlib.Path(paths[1]).read_bytes()], dtype=object))
    result = _cli("run", "--dir", path, "--tag_set", "serve", "--signature_def",
                  "serving_default", "--inputs", f"image_bytes={npy}")
    assert result.returncode == 0, result.stderr[-3000:]
    match = re.search(r"Result for output key score:\s*\[([-0-9.e+]+)\]", result.stdout)
    assert match, result.stdout[-2000:]
    assert float(match.group(1)) == pytest.approx(scores[1], abs=1e-3)  # printed to ~8 digits


def test_predict_names_a_corrupt_image_and_scores_the_rest(exported, tmp_path, run_launcher,
                                                           capsys):
    from launch import predict as launcher

    path, scores, paths, threshold = exported
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    names = []
    for i, p in enumerate(paths[:4]):
        target = images / ("sub" if i == 3 else "") / f"img{i}.png"
        shutil.copy(p, target)
        names.append(str(target))
    (images / "broken.png").write_bytes(b"not an image")
    out_dir = tmp_path / "out"
    status = run_launcher(launcher, f"--model={os.path.dirname(path)}", f"--images={images}",
                          f"--output_dir={out_dir}", "--predict_batch_size=2", "--progress=false")
    out, err = capsys.readouterr()
    assert status == 1, out[-2000:] + err[-3000:]
    assert "broken.png: cannot decode: Unknown image file format" in err
    assert "Scored 4 of 5 images" in out
    report = json.loads((out_dir / "predictions.json").read_text())
    assert report["summary"]["failed"] == 1 and report["summary"]["scored"] == 4
    assert report["failed"][0]["path"] == str(images / "broken.png")
    by_path = {r["path"]: r for r in report["predictions"]}
    for name, score in zip(names, scores[:4]):
        assert by_path[name]["score"] == pytest.approx(score, abs=1e-4)
        assert by_path[name]["is_anomaly"] == (by_path[name]["score"] > threshold)
        assert pathlib.Path(by_path[name]["heatmap"]).exists()
    assert (out_dir / "heatmaps" / "sub" / "img3.png").exists()
    rows = (out_dir / "predictions.csv").read_text().splitlines()
    assert rows[0] == "path,score,is_anomaly,error" and len(rows) == 6
    assert not [p for p in os.listdir(out_dir) if ".tmp-" in p]


def test_predict_progress_off_a_terminal_is_plain_lines(exported, tmp_path, run_launcher,
                                                         capsys, monkeypatch):
    """captured stdout is not a terminal: no Keras bar (carriage returns, backspaces, colour
    codes), a plain line per batch here (every 0 s), none after the last."""
    from cutpaste_tf.serving import predictions
    from launch import predict as launcher

    monkeypatch.setattr(predictions, "PROGRESS_EVERY_S", 0.0)
    path, _, paths, _ = exported
    images = tmp_path / "images"
    images.mkdir()
    for i, p in enumerate(paths[:5]):
        shutil.copy(p, images / f"img{i}.png")
    status = run_launcher(launcher, f"--model={path}", f"--images={images}",
                          f"--output_dir={tmp_path / 'out'}", "--predict_batch_size=2",
                          "--progress")
    out = capsys.readouterr().out
    assert status == 0, out[-2000:]
    assert not re.search(r"[\r\x08\x1b]", out), repr(out[-2000:])
    lines = out.splitlines()
    assert [line.split(" (")[0] for line in lines if line.startswith("scored ")] == [
        "scored 2/5 images", "scored 4/5 images"], lines
    assert all(re.fullmatch(r"scored \d/5 images \(\d+ ms/image\)", line)
               for line in lines if line.startswith("scored ")), lines
    assert "Scored 5 of 5 images" in out


def test_subclass_adds_an_anomaly_map_without_touching_export():
    class Mapped(savedmodel.AnomalyScorer):
        def anomaly_map(self, images):
            return tf.reduce_mean(images, axis=-1)

    plain = savedmodel.AnomalyScorer.__new__(savedmodel.AnomalyScorer)
    plain._map_fn = None
    mapped = Mapped.__new__(Mapped)
    mapped._map_fn = None
    assert not plain.has_anomaly_map and mapped.has_anomaly_map


def test_resolve_finds_the_newest_version(tmp_path):
    for category, version in [("washer", 1), ("washer", 3), ("washer", 12), ("fabric", 2)]:
        folder = tmp_path / "model" / "export" / category / str(version)
        folder.mkdir(parents=True)
        (folder / "saved_model.pb").write_bytes(b"")
    (tmp_path / "model" / "export" / "washer" / "20").mkdir()  # incomplete: no saved_model.pb
    model_dir = str(tmp_path / "model")
    newest = os.path.join(model_dir, "export", "washer", "12")
    assert savedmodel.resolve(model_dir, "washer") == newest
    assert savedmodel.resolve(os.path.join(model_dir, "export", "washer")) == newest
    assert savedmodel.resolve(newest) == newest
    with pytest.raises(ValueError, match="2 categories .*fabric, washer.*category=<name>"):
        savedmodel.resolve(model_dir)
    with pytest.raises(FileNotFoundError, match="no export of category 'bottle'"):
        savedmodel.resolve(model_dir, "bottle")


def test_bad_version_and_missing_model():
    with pytest.raises(ValueError, match="positive integer"):
        savedmodel.export(None, "/tmp/x", "m", version=0)
    with pytest.raises(FileNotFoundError, match="no SavedModel"):
        savedmodel.load("/nonexistent/model/1")


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
def test_tflite_matches_evaluation_with_builtin_ops_only(built):
    scorer, scores, paths, threshold = built
    flatbuffer = tflite.convert(scorer)
    images = np.stack([data.load_image(tf.constant(p), SIZE).numpy() for p in paths])
    out = tflite.run(flatbuffer, images)
    assert set(out) == {"score", "is_anomaly", "threshold", "embedding", "image_stats",
                        "anomaly_map"}
    np.testing.assert_allclose(out["score"], scores, atol=1e-4, rtol=1e-5)
    np.testing.assert_allclose(out["threshold"], threshold)
    clear = np.abs(out["score"] - threshold) > 1e-3
    assert np.array_equal(out["is_anomaly"][clear], (out["score"] > threshold)[clear])
    assert out["anomaly_map"].shape == (len(paths), *SIZE)
    np.testing.assert_allclose(out["anomaly_map"], _stand_in_map(images), atol=1e-5)
    interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert not any(name.startswith("Flex") or name == "READ_VARIABLE" for name in ops), ops
