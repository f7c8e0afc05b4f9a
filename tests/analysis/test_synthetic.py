"""Tests for the synthetic anomalies of Sec. 5.3: cutpaste_tf.ops.synthetic (parameter statistics
over many seeds, masks, fills, XLA), cutpaste_tf.analysis.synthetic_benchmark (AUROC per kind on a tiny
model) and launch.synthetic end to end on testdata."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf
from helpers import ROOT

from cutpaste_tf.analysis import synthetic_benchmark as bench
from cutpaste_tf.ops import synthetic
from cutpaste_tf.ops.synthetic import SYNTHETIC_SHAPES, SyntheticConfig
from cutpaste_tf.reporting import paper

N_SEEDS = 1000
HEART_FILL = 0.718  # area of the heart curve / its bounding box, from a 3001^2 grid
DIGITS = synthetic.digit_templates(32, limit=50)


def _sample_many(height, width, shape, n=N_SEEDS, config=SyntheticConfig()):
    """sample_synthetic for n seeds (one example each), as [n] arrays."""
    seeds = tf.constant(np.stack([np.arange(n), np.full(n, 7)], 1), tf.int32)

    def one(seed):
        return synthetic.sample_synthetic(seed, 1, height, width, shape, 10, 3, config)

    out = tf.function(lambda s: tf.vectorized_map(one, s))(seeds)
    return {k: v.numpy()[:, 0] for k, v in out.items()}


@pytest.mark.parametrize("height,width,shape", [(64, 64, "square"), (48, 80, "ellipse")])
def test_sampled_sizes_angles_and_positions(height, width, shape):
    p = _sample_many(height, width, shape)
    # Box area ratio uniform on (0.02, 0.15): range, mean and quartiles.
    ratio = p["box_h"] * p["box_w"] / (height * width)
    assert np.allclose(ratio, p["area_ratio"], rtol=1e-4)
    assert ratio.min() >= 0.02 - 1e-6 and ratio.max() < 0.15
    assert abs(ratio.mean() - 0.085) < 0.004
    assert np.allclose(np.quantile(ratio, [0.25, 0.75]), [0.0525, 0.1175], atol=0.006)
    aspect = p["box_h"] / p["box_w"]
    if shape == "square":
        assert np.allclose(aspect, 1.0, atol=1e-5)
    else:  # log-uniform on (0.5, 2): symmetric about 1 in log space
        assert aspect.min() >= 0.5 - 1e-4 and aspect.max() <= 2.0 + 1e-4
        assert abs(np.mean(np.log(aspect))) < 0.04
        assert abs(np.mean(aspect > 1.0) - 0.5) < 0.05
    deg = np.degrees(p["angle"])
    assert deg.min() >= -45 and deg.max() <= 45 and abs(deg.mean()) < 2.0
    assert abs(np.mean(np.abs(deg) < 22.5) - 0.5) < 0.05
    # The rotated box lies wholly inside the image, and centres spread over the free room.
    cos, sin = np.abs(np.cos(p["angle"])), np.abs(np.sin(p["angle"]))
    half_y = 0.5 * (sin * p["box_w"] + cos * p["box_h"])
    half_x = 0.5 * (cos * p["box_w"] + sin * p["box_h"])
    assert np.all(p["cy"] - half_y >= -1e-3) and np.all(p["cy"] + half_y <= height + 1e-3)
    assert np.all(p["cx"] - half_x >= -1e-3) and np.all(p["cx"] + half_x <= width + 1e-3)
    assert abs(p["cy"].mean() - height / 2) < 0.03 * height
    assert abs(p["cx"].mean() - width / 2) < 0.03 * width
    assert p["cx"].min() < 0.25 * width and p["cx"].max() > 0.75 * width
    # Indices and colours cover their ranges uniformly.
    assert set(p["digit"]) == set(range(10)) and set(p["source"]) == {0, 1, 2}
    assert np.all((p["color"] >= 0) & (p["color"] < 1))
    assert np.allclose(p["color"].mean(0), 0.5, atol=0.03)


def _params(**kw):
    base = dict(box_h=[20.0], box_w=[20.0], angle=[0.0], cy=[30.0], cx=[40.0],
                src_cy=[20.0], src_cx=[30.0], area_ratio=[0.1], color=[[0.9, 0.1, 0.2]],
                digit=[0], source=[0])
    base.update(kw)
    return {k: tf.constant(v, tf.int32 if k in ("digit", "source") else tf.float32)
            for k, v in base.items()}


@pytest.mark.parametrize("shape,fill_ratio", [("square", 1.0), ("ellipse", math.pi / 4),
                                              ("heart", HEART_FILL)])
def test_mask_areas_and_containment(shape, fill_ratio):
    height, width = 48, 80
    p = synthetic.sample_synthetic(tf.constant([3, 4]), 400, height, width, shape)
    mask = synthetic.synthetic_mask(p, shape, height, width).numpy()
    box = (p["box_h"] * p["box_w"]).numpy()
    ratio = mask.sum((1, 2)) / box
    assert abs(ratio.mean() - fill_ratio) < 0.03 * fill_ratio
    assert np.all(np.abs(ratio - fill_ratio) < 0.3 * fill_ratio)  # small shapes: pixel effects
    # A shape drawn on a larger canvas, shifted by the padding, covers no extra pixels:
    # nothing of it was cut off at the border.
    pad = {**p, "cy": p["cy"] + 20.0, "cx": p["cx"] + 20.0}
    assert synthetic.synthetic_mask(pad, shape, height + 40, width + 40).numpy().sum() == mask.sum()
    if shape != "heart":  # symmetric shapes: centroid at the centre
        ys, xs = np.mgrid[:height, :width] + 0.5
        cy = (mask * ys).sum((1, 2)) / mask.sum((1, 2))
        cx = (mask * xs).sum((1, 2)) / mask.sum((1, 2))
        assert np.max(np.abs(cy - p["cy"].numpy())) < 0.75
        assert np.max(np.abs(cx - p["cx"].numpy())) < 0.75


def test_heart_points_down_and_rotation_turns_it():
    upright = synthetic.synthetic_mask(_params(box_h=[40.0], box_w=[40.0], cy=[24.0], cx=[40.0]),
                                       "heart", 48, 80).numpy()[0]
    rows = upright.sum(1)
    assert rows[10] > 2 * rows[40] > 0  # wide lobes near the top, the narrow tip at the bottom
    turned = synthetic.synthetic_mask(
        _params(box_h=[40.0], box_w=[40.0], cy=[24.0], cx=[40.0], angle=[math.pi / 2]),
        "heart", 48, 80).numpy()[0]
    assert abs(int(turned.sum()) - int(upright.sum())) < 0.03 * upright.sum()
    cols = turned.sum(0)
    assert cols[54] > 2 * cols[24] > 0  # +90 degrees: lobes to the right, the tip to the left


def test_digit_templates_and_unrotated_digit_reproduces_the_template():
    assert DIGITS.shape == (50, 32, 32) and set(np.unique(DIGITS)) == {0.0, 1.0}
    ink = DIGITS.mean((1, 2))
    assert ink.min() > 0.05 and ink.max() < 0.6
    # A 32x32 box at an integer corner, unrotated: the mask is the template itself.
    p = _params(box_h=[32.0], box_w=[32.0], cy=[10 + 16.0], cx=[20 + 16.0], digit=[7])
    mask = synthetic.synthetic_mask(p, "digit", 48, 80, DIGITS).numpy()[0]
    assert np.array_equal(mask[10:42, 20:52], DIGITS[7] > 0.5)
    assert mask.sum() == DIGITS[7].sum()


@pytest.mark.parametrize("shape", SYNTHETIC_SHAPES)
def test_colour_fill_changes_only_the_mask(shape):
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(size=(16, 40, 56, 3)), tf.float32)
    p = synthetic.sample_synthetic(tf.constant([1, 2]), 16, 40, 56, shape, len(DIGITS))
    out = synthetic.apply_synthetic(images, p, shape, "color", DIGITS).numpy()
    mask = synthetic.synthetic_mask(p, shape, 40, 56, DIGITS).numpy()
    assert mask.sum(axis=(1, 2)).min() > 0
    assert np.array_equal(out[~mask], images.numpy()[~mask])
    colours = np.broadcast_to(p["color"].numpy()[:, None, None, :], out.shape)
    assert np.array_equal(out[mask], colours[mask])


def test_natural_fill_reads_a_rotated_region_of_the_chosen_source():
    height, width, n = 40, 56, 3
    ys, xs = np.mgrid[:height, :width].astype(np.float32)
    # Source s, pixel (y, x) holds (y / 64, x / 64, s / 4): each value tells where it came from.
    sources = np.stack([np.stack([ys / 64, xs / 64, np.full_like(ys, s / 4)], -1)
                        for s in range(n)])
    images = tf.ones([64, height, width, 3])
    p = synthetic.sample_synthetic(tf.constant([5, 6]), 64, height, width, "ellipse", 1, n)
    out = synthetic.apply_synthetic(images, p, "ellipse", "natural", sources=sources).numpy()
    mask = synthetic.synthetic_mask(p, "ellipse", height, width).numpy()
    assert np.all(out[~mask] == 1.0)
    for b in range(64):
        got = out[b][mask[b]]
        assert np.allclose(got[:, 2], p["source"].numpy()[b] / 4)
        # Distance from the source centre equals the pixel's distance from the shape centre.
        yy, xx = ys[mask[b]] + 0.5, xs[mask[b]] + 0.5
        d_dst = np.hypot(yy - p["cy"].numpy()[b], xx - p["cx"].numpy()[b])
        d_src = np.hypot(got[:, 0] * 64 + 0.5 - p["src_cy"].numpy()[b],
                         got[:, 1] * 64 + 0.5 - p["src_cx"].numpy()[b])
        assert np.max(np.abs(d_dst - d_src)) < 1.5
    assert len(set(p["source"].numpy())) == n


def test_xla_and_tf_data_match_eager():
    rng = np.random.default_rng(1)
    images = tf.constant(rng.uniform(size=(4, 32, 48, 3)), tf.float32)
    sources = tf.constant(rng.uniform(size=(3, 32, 48, 3)), tf.float32)
    digits = tf.constant(DIGITS)
    # Both fills, and the two shapes with the most code (the digit gathers, the heart's
    # polynomial); squares and ellipses are plain comparisons of the same coordinates.
    kinds = [("digit", "natural"), ("heart", "color")]

    def fn(x, s):  # one function, so one XLA compile (seconds on a busy CPU)
        return [synthetic.synthesize(x, s, shape, fill, digits, sources) for shape, fill in kinds]

    seed = tf.constant([9, 1])
    eager = fn(images, seed)
    xla = tf.function(fn, jit_compile=True)(images, seed)
    for kind, e, x in zip(kinds, eager, xla):
        # Float rounding may flip a boundary pixel (see ops/random.py); nothing more.
        assert np.mean(np.any(e.numpy() != x.numpy(), -1)) < 2e-3, kind
        assert not np.array_equal(e.numpy(), images.numpy())
    ds = tf.data.Dataset.from_tensors(images).map(
        lambda x: synthetic.synthesize(x, tf.constant([9, 1]), "heart", "color"))
    assert np.array_equal(next(iter(ds)).numpy(),
                          synthetic.synthesize(images, tf.constant([9, 1]), "heart", "color"))


def test_bad_kinds_and_missing_inputs_are_named():
    images = tf.zeros([2, 32, 32, 3])
    with pytest.raises(ValueError, match="unknown synthetic shape 'star'"):
        synthetic.synthesize(images, tf.constant([0, 0]), "star", "color")
    with pytest.raises(ValueError, match="natural fill needs source images"):
        synthetic.synthesize(images, tf.constant([0, 0]), "square", "natural")
    with pytest.raises(ValueError, match="digit templates"):
        synthetic.synthesize(images, tf.constant([0, 0]), "digit", "color")
    with pytest.raises(ValueError, match="resize them"):
        synthetic.synthesize(images, tf.constant([0, 0]), "square", "natural",
                             sources=tf.zeros([1, 16, 16, 3]))
    with pytest.raises(ValueError, match="unknown synthetic kind"):
        bench.split_kind("square_blue")


def test_synthetic_auroc_on_a_tiny_model(tiny_run):
    model, estimator = tiny_run.model_and_density
    rng = np.random.default_rng(2)
    normal = rng.uniform(0.4, 0.6, size=(6, 32, 32, 3)).astype(np.float32)
    sources = rng.uniform(size=(4, 32, 32, 3)).astype(np.float32)
    result = bench.synthetic_auroc(model, estimator, normal, "pooled", sources, DIGITS)
    assert list(result) == list(bench.KINDS)
    assert all(0.0 <= v <= 1.0 for v in result.values())
    again = bench.synthetic_auroc(model, estimator, normal, "pooled", sources, DIGITS,
                                  kinds=["heart_color"], copies=2)
    assert bench.synthetic_auroc(model, estimator, normal, "pooled", sources, DIGITS,
                                 kinds=["heart_color"], copies=2) == again  # seeded
    # With copies=2 the first copy is the one of copies=1: the same altered images come first.
    first = bench.make_anomalies(normal, "heart_color", 0, DIGITS, sources)
    assert np.array_equal(first, bench.make_anomalies(normal, "heart_color", 0, DIGITS, sources))
    assert not np.array_equal(first, bench.make_anomalies(normal, "heart_color", 1, DIGITS,
                                                          sources))
    avg = bench.averages(result)
    assert abs(avg["table6"] - np.mean([result[k] for k in paper.TABLE6_KINDS])) < 1e-12
    table = bench.table6_markdown({"washer": result}, "t")
    assert "| paper, cutpaste (MVTec AD) | 96.1 |" in table and "| washer |" in table
    with pytest.raises(ValueError, match="natural fills need source images"):
        bench.synthetic_auroc(model, estimator, normal, "pooled", None, DIGITS)
    png = bench.example_grid(normal, sources, DIGITS, count=2)
    assert tf.io.decode_png(png).shape == (9 * 36, 2 * 36, 3)


def test_table6_markdown_lists_our_kinds_and_the_paper_rows():
    ours = {"washer": {"square_color": 0.9, "heart_natural": 0.75}, "bolt": {"square_color": 0.5}}
    md = bench.table6_markdown(ours, "Synthetic")
    lines = md.splitlines()
    assert lines[:4] == ["### Synthetic", "", "| | square_color | heart_natural | "
                         "Avg (Table 6 kinds) |", "|---|---|---|---|"]
    # Not all seven of Table 6's kinds: no average of ours.
    assert "| washer | 90.0 | 75.0 | – |" in lines and "| bolt | 50.0 | – | – |" in lines
    assert any(ln.startswith("| paper, cutpaste (MVTec AD) |") for ln in lines)


def test_launcher_end_to_end_on_testdata(tiny_run, tmp_path, run_launcher, capsys):
    from launch import synthetic as launcher

    model_dir = tiny_run.copy(tmp_path)
    status = run_launcher(launcher, f"--model_dir={model_dir}", "--data_dir=testdata",
                          "--category=washer")
    out, err = capsys.readouterr()
    assert status == 0, err[-3000:]
    saved = json.loads((model_dir / "synthetic.json").read_text())
    washer = saved["categories"]["washer"]
    assert set(washer["auroc"]) == set(bench.KINDS) and washer["num_normal"] == 12
    # Natural patches come from the other category, fabric.
    assert washer["natural_sources"] and all("/fabric/train/good/" in p
                                             for p in washer["natural_sources"])
    assert "| washer |" in (model_dir / "synthetic.md").read_text()
    assert "heart_natural" in out and "paper, cutpaste" in out
    png = (model_dir / "washer" / "synthetic_examples.png").read_bytes()
    assert tf.io.decode_png(png).shape[0] == 9 * 36


def test_a_single_category_dataset_needs_natural_dir(tiny_run, tmp_path):
    from cutpaste_tf.pipeline.inputs import InputSpec

    single = tmp_path / "single"
    (single / "washer").mkdir(parents=True)
    for part in ("train", "test"):
        os.symlink(ROOT / "testdata" / "washer" / part, single / "washer" / part)
    model_dir, washer = str(tiny_run.model_dir), InputSpec(data_dir=str(single),
                                                           categories=("washer",))
    with pytest.raises(ValueError, match="pass natural_dir="):
        bench.plan(model_dir, washer)
    _, work = bench.plan(model_dir, washer,
                         natural_dir=str(ROOT / "testdata" / "fabric" / "train" / "good"))
    assert work[0][0].name == "washer" and len(work[0][1]) > 0
    with pytest.raises(ValueError, match="no trained model for fabric"):
        bench.plan(model_dir, InputSpec(data_dir=str(single), categories=("fabric",)))


def test_launcher_on_held_out_training_images_reads_no_test_image(tiny_run, tmp_path,
                                                                   run_launcher, capsys):
    from cutpaste_tf import rundir
    from launch import synthetic as launcher

    model_dir = tiny_run.copy(tmp_path)
    held = rundir.held_out_files(str(model_dir / "washer"))
    assert len(held) == 15 and all("/train/good/" in p for p in held)  # 0.25 of 60
    status = run_launcher(launcher, f"--model_dir={model_dir}", "--data_dir=testdata",
                          "--category=washer", "--synthetic_on=heldout",
                          "--nosynthetic_examples")
    out, err = capsys.readouterr()
    assert status == 0, err[-3000:]
    assert "15 held-out training images" in out
    saved = json.loads((model_dir / "synthetic_heldout.json").read_text())
    assert saved["images"] == "heldout" and saved["categories"]["washer"]["num_normal"] == 15
    assert "held-out training images" in (model_dir / "synthetic_heldout.md").read_text()
    assert not (model_dir / "synthetic.json").exists()  # the test-set results stay apart

    # A run that held nothing out is refused by name, before any model is loaded.
    record = json.loads((model_dir / "washer" / "threshold.json").read_text())
    record.update(normal_method="out_of_fold_quantile", normal_files=[])
    (model_dir / "washer" / "threshold.json").write_text(json.dumps(record))
    status = run_launcher(launcher, f"--model_dir={model_dir}", "--data_dir=testdata",
                          "--category=washer", "--synthetic_on=heldout")
    err = capsys.readouterr().err
    assert status == 2 and "held no training images out" in err and "val_fraction" in err
