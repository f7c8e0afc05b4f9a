"""Tests for cutpaste_tf.ops.baselines: rotation, Cutout (grey / mean / colour), the Cutout-style
Scar and Confetti noise (the baselines of Tables 1 and 4).

Distributions are checked over 2,000 independent draws (one batch: every example draws its own
parameters), against CutPaste's ranges where a baseline shares its geometry.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf
from helpers import coord_images  # pixel values that name their position
from scipy import stats

from cutpaste_tf import config as config_lib
from cutpaste_tf.config import TASK_VIEWS, AugmentConfig
from cutpaste_tf.ops import baselines as bl
from cutpaste_tf.ops import cutpaste as cp
from cutpaste_tf.ops import patches, sampling, tasks

N = 2000
SEED = tf.constant([11, 5])
NEW_TASKS = ("rotation", "cutout", "cutout_mean", "cutout_color", "scar_cutout", "confetti")


def _np(params):
    return {k: v.numpy() for k, v in params.items() if k != "jitter"}




def _noise_images(batch, height, width, lo=0.1, hi=0.9, seed=0):
    rng = np.random.default_rng(seed)
    return (lo + (hi - lo) * rng.uniform(size=(batch, height, width, 3))).astype(np.float32)


def _check_colours_uniform(colours):
    """[n, 3] colours: each channel uniform over [0, 1), channels independent."""
    assert colours.min() >= 0.0 and colours.max() < 1.0
    for c in range(3):
        assert stats.kstest(colours[:, c], "uniform").pvalue > 1e-3
    corr = np.corrcoef(colours.T)[np.triu_indices(3, 1)]
    assert np.all(np.abs(corr) < 5 / math.sqrt(len(colours)))


def _rect_frame(cy, cx, angle, height, width):
    """(u, v) of every pixel centre in a rectangle's frame (as cutpaste.rotated_rect)."""
    yy, xx = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
    dy, dx = yy - cy, xx - cx
    c, s = math.cos(angle), math.sin(angle)
    return c * dx + s * dy, -s * dx + c * dy


# =============================================================================================
# Rotation.


def test_rotation_is_exact_quarter_turns():
    images = coord_images(3, 32, 32)
    x = tf.constant(images)
    for k in range(5):
        np.testing.assert_array_equal(bl.rotate(x, k).numpy(),
                                      np.rot90(images, k, axes=(1, 2)))
    # Counter-clockwise: the top-right corner moves to the top-left.
    np.testing.assert_array_equal(bl.rotate(x, 1).numpy()[:, 0, 0], images[:, 0, -1])
    once = x
    for _ in range(4):
        once = bl.rotate(once, 1)
    np.testing.assert_array_equal(once.numpy(), images)
    with pytest.raises(ValueError, match="square"):
        bl.rotate(tf.zeros([1, 32, 48, 3]), 1)


def test_rotation_views_and_labels():
    batch = 4
    images = coord_images(batch, 40, 40)
    views, labels = tasks.make_views(tf.constant(images), SEED, "rotation", pre=False)
    np.testing.assert_array_equal(labels.numpy(), np.repeat(np.arange(4), batch))
    v = views.numpy().reshape(4, batch, 40, 40, 3)
    for k in range(4):
        np.testing.assert_array_equal(v[k], np.rot90(images, k, axes=(1, 2)))
    # With pre-augmentation every view is a turn of the same pre-augmented image.
    jitter = AugmentConfig(jitter=(0.1, 0.1, 0.1, 0.0))
    views, _ = tasks.make_views(tf.constant(images), SEED, "rotation", jitter)
    v = views.numpy().reshape(4, batch, 40, 40, 3)
    assert np.abs(v[0] - images).max() > 0.01
    for k in range(1, 4):
        np.testing.assert_array_equal(v[k], np.rot90(v[0], k, axes=(1, 2)))


def test_rotation_refuses_non_square_sizes_with_the_flag_name():
    with pytest.raises(ValueError, match="square"):
        tasks.make_views(tf.zeros([2, 32, 48, 3]), SEED, "rotation")
    with pytest.raises(ValueError, match="square image_size"):
        config_lib.TrainConfig(task="rotation", image_size=(256, 320), batch_size=64)
    config_lib.TrainConfig(task="rotation", image_size=(256, 256), batch_size=64)
    with pytest.raises(ValueError, match="multiple of the 4 views"):
        config_lib.TrainConfig(task="rotation", batch_size=66)
    patch = config_lib.LocalizationConfig(model_type="patch", train_patch_size=(64, 48))
    with pytest.raises(ValueError, match="square train_patch_size"):
        config_lib.RunConfig(train=config_lib.TrainConfig(task="rotation", batch_size=64),
                             localization=patch)
    # Other tasks take non-square sizes.
    config_lib.RunConfig(train=config_lib.TrainConfig(task="confetti", image_size=(256, 320),
                                                      batch_size=64), localization=patch)


# =============================================================================================
# Cutout.


@pytest.mark.parametrize("height,width", [(64, 64), (48, 80)])
def test_cutout_boxes_follow_cutpaste_destination_distribution(height, width):
    p = _np(bl.sample_cutout(SEED, N, height, width))
    # Exactly CutPaste's destination boxes for the first sub-seed.
    ref = _np(cp.sample_cutpaste(sampling.split(SEED, 2)[0], N, height, width))
    for k in ("patch_h", "patch_w", "dst_y", "dst_x", "area_ratio", "aspect_ratio"):
        np.testing.assert_array_equal(p[k], ref[k], err_msg=k)
    area, aspect = p["area_ratio"].astype(np.float64), p["aspect_ratio"].astype(np.float64)
    assert area.min() >= np.float32(0.02) and area.max() < np.float32(0.15)
    assert stats.kstest(area, stats.uniform(loc=0.02, scale=0.13).cdf).pvalue > 1e-3
    log_aspect = (np.log(aspect) - math.log(0.3)) / (math.log(3.3) - math.log(0.3))
    assert stats.kstest(np.clip(log_aspect, 0, 1), "uniform").pvalue > 1e-3
    realised = p["patch_h"] * p["patch_w"] / (height * width)
    assert realised.min() > 0.01 and realised.max() < 0.17
    assert np.all(p["dst_y"] >= 0) and np.all(p["dst_y"] + p["patch_h"] <= height)
    assert np.all(p["dst_x"] >= 0) and np.all(p["dst_x"] + p["patch_w"] <= width)
    _check_colours_uniform(p["color"])


@pytest.mark.parametrize("fill", bl.CUTOUT_FILLS)
@pytest.mark.parametrize("height,width", [(48, 80), (80, 48)])
def test_apply_cutout_fills_exactly_the_box(fill, height, width):
    batch = 64
    images = _noise_images(batch, height, width, lo=0.6, hi=0.95)  # never exactly the fill
    params = bl.sample_cutout(SEED, batch, height, width)
    out = bl.apply_cutout(tf.constant(images), params, fill).numpy()
    p = _np(params)
    means = images.mean(axis=(1, 2))
    for i in range(batch):
        box = np.zeros((height, width), bool)
        box[p["dst_y"][i]:p["dst_y"][i] + p["patch_h"][i],
            p["dst_x"][i]:p["dst_x"][i] + p["patch_w"][i]] = True
        np.testing.assert_array_equal(out[i][~box], images[i][~box])  # outside: unchanged
        want = {"grey": np.full(3, 0.5, np.float32), "mean": means[i], "color": p["color"][i]}
        np.testing.assert_allclose(out[i][box], np.broadcast_to(want[fill], (box.sum(), 3)),
                                   rtol=0, atol=1e-5)  # float32 sums of the mean
        assert np.all(np.any(out[i][box] != images[i][box], axis=-1))
    if fill == "color":  # colours spread over [0, 1], differ between boxes
        assert np.ptp(p["color"]) > 0.8 and len(np.unique(p["color"][:, 0])) == batch


def test_cutout_unknown_fill_is_refused():
    params = bl.sample_cutout(SEED, 2, 32, 32)
    with pytest.raises(ValueError, match="fill"):
        bl.apply_cutout(tf.zeros([2, 32, 32, 3]), params, "black")


# =============================================================================================
# Scar (Cutout-style).


def test_scar_cutout_geometry_is_cutpaste_scar():
    p = _np(bl.sample_scar_cutout(SEED, N, 256, 256))
    ref = _np(cp.sample_scar(sampling.split(SEED, 2)[0], N, 256, 256))
    for k in ("scar_w", "scar_l", "angle", "dst_cy", "dst_cx"):
        np.testing.assert_array_equal(p[k], ref[k], err_msg=k)
    w, l = p["scar_w"].astype(np.float64), p["scar_l"].astype(np.float64)
    deg = np.degrees(p["angle"].astype(np.float64))
    assert stats.kstest(w, stats.uniform(loc=2, scale=14).cdf).pvalue > 1e-3
    assert stats.kstest(l, stats.uniform(loc=10, scale=15).cdf).pvalue > 1e-3
    assert stats.kstest(deg, stats.uniform(loc=-45, scale=90).cdf).pvalue > 1e-3
    _check_colours_uniform(p["color"])
    # At 64x64 the sizes are the same pixels, as CutPaste-Scar's are; scaled from 256x256
    # they shrink by 1/4 (with a one-pixel floor).
    small = _np(bl.sample_scar_cutout(SEED, N, 64, 64))
    np.testing.assert_array_equal(small["scar_w"], p["scar_w"])
    np.testing.assert_array_equal(small["scar_l"], p["scar_l"])
    scaled = _np(bl.sample_scar_cutout(SEED, N, 64, 64, AugmentConfig(scar_reference_size=256)))
    np.testing.assert_allclose(scaled["scar_w"], np.maximum(p["scar_w"] / 4, 1.0), rtol=1e-5)
    np.testing.assert_allclose(scaled["scar_l"], p["scar_l"] / 4, rtol=1e-5)


@pytest.mark.parametrize("height,width", [(64, 64), (48, 80)])
def test_apply_scar_cutout_paints_the_rotated_rectangle(height, width):
    batch = 96
    images = _noise_images(batch, height, width)
    scale = (256, 256)  # full-size scars in a small image: large enough to see the shape
    params = bl.sample_scar_cutout(SEED, batch, height, width, scale_size=scale)
    out = bl.apply_scar_cutout(tf.constant(images), params).numpy()
    p = _np(params)
    errors = []
    for i in range(batch):
        u, v = _rect_frame(p["dst_cy"][i], p["dst_cx"][i], p["angle"][i], height, width)
        w, l = p["scar_w"][i], p["scar_l"][i]
        changed = np.any(out[i] != images[i], axis=-1)
        sure_in = (np.abs(u) < w / 2 - 1e-3) & (np.abs(v) < l / 2 - 1e-3)
        sure_out = (np.abs(u) > w / 2 + 1e-3) | (np.abs(v) > l / 2 + 1e-3)
        assert np.all(changed[sure_in]) and not np.any(changed[sure_out])
        np.testing.assert_array_equal(out[i][changed], np.broadcast_to(p["color"][i],
                                                                        (changed.sum(), 3)))
        errors.append(changed.sum() - w * l)
    # Pixel counts are the rectangle's area on average.
    assert abs(np.mean(errors)) < 0.1 * np.mean(2 * (p["scar_w"] + p["scar_l"])) + 0.5


# =============================================================================================
# Confetti.


def test_confetti_counts_sizes_angles_positions_colours():
    height, width = 64, 96
    p = _np(bl.sample_confetti(SEED, N, height, width))
    k = bl.CONFETTI_MAX_BLOBS
    for s, rate in enumerate(bl.CONFETTI_RATES):
        counts = p["count"][:, s]
        observed = np.bincount(counts, minlength=k + 1)[1:]
        assert counts.min() >= 1 and counts.max() <= k and observed.sum() == N
        expected = N * np.array(bl.confetti_count_probs(rate))
        # Pool the rare tail (expected counts under 5) into one chi-square cell.
        tail = expected < 5
        obs, exp = observed[~tail], expected[~tail]
        if tail.any():
            obs, exp = np.append(obs, observed[tail].sum()), np.append(exp, expected[tail].sum())
        assert stats.chisquare(obs, exp).pvalue > 1e-3
        np.testing.assert_array_equal(p["active"][:, s * k:(s + 1) * k].sum(1), counts)
    # Conditioned on >= 1 blob: the coloured set averages rate / (1 - exp(-rate)) ~ 1.5.
    mean_coloured = bl.CONFETTI_RATES[0] / (1 - math.exp(-bl.CONFETTI_RATES[0]))
    assert 1.5 < mean_coloured < 1.55
    assert abs(p["count"][:, 0].mean() - mean_coloured) < 5 * 0.7 / math.sqrt(N)
    scale = bl.confetti_scale(height, width)
    sides = np.rint(p["side"] / scale).astype(int).ravel()
    np.testing.assert_allclose(p["side"].ravel(), sides * scale, rtol=1e-5)
    values, freq = np.unique(sides, return_counts=True)
    np.testing.assert_array_equal(values, np.arange(8, 55))
    assert stats.chisquare(freq).pvalue > 1e-3
    deg = np.degrees(p["angle"].ravel().astype(np.float64))
    assert stats.kstest(deg, stats.uniform(loc=-45, scale=90).cdf).pvalue > 1e-3
    assert stats.kstest(p["cy"].ravel() / height, "uniform").pvalue > 1e-3
    assert stats.kstest(p["cx"].ravel() / width, "uniform").pvalue > 1e-3
    _check_colours_uniform(p["color"][:, :k].reshape(-1, 3))
    np.testing.assert_array_equal(p["color"][:, k:], 1.0)  # the white set


@pytest.mark.parametrize("height,width", [(64, 64), (48, 80)])
def test_apply_confetti_changes_only_near_blobs(height, width):
    batch = 48
    images = _noise_images(batch, height, width, lo=0.1, hi=0.5)
    params = bl.sample_confetti(SEED, batch, height, width)
    out = bl.apply_confetti(tf.constant(images), params).numpy()
    noise = bl.confetti_noise(params, height, width).numpy()
    blobs = bl.confetti_blobs(params, height, width).numpy().max(axis=1) > 0
    radius, _ = bl.confetti_blur(height, width)
    assert noise.min() >= 0.0
    np.testing.assert_allclose(out, np.clip(images + noise, 0, 1), atol=1e-6)  # never inverted
    coverage = []
    for i in range(batch):
        changed = np.any(out[i] != images[i], axis=-1)
        # Unchanged wherever the blurred blob image is zero ...
        assert not np.any(changed[~np.any(noise[i] > 0, axis=-1)])
        # ... which is everywhere farther than the blur radius from every blob.
        near = blobs[i].copy()
        ys, xs = np.nonzero(blobs[i])
        for y, x in zip(ys, xs):
            near[max(0, y - radius):y + radius + 1, max(0, x - radius):x + radius + 1] = True
        assert not np.any(changed[~near])
        # Every blob pixel is changed, and every image has at least one blob.
        assert blobs[i].any() and np.all(changed[blobs[i]])
        coverage.append(blobs[i].mean())
    # Blobs cover a few percent of the image on average (sides 8-54 of 224, about 2.9 blobs).
    assert 0.01 < np.mean(coverage) < 0.2


def test_confetti_blur_is_a_reflect_padded_gaussian():
    height, width = 40, 72
    params = bl.sample_confetti(SEED, 6, height, width)
    blobs = bl.confetti_blobs(params, height, width).numpy()
    flat = np.einsum("bkhw,bkc->bhwc", blobs, params["color"].numpy()).astype(np.float64)
    radius, sigma = bl.confetti_blur(height, width)
    assert radius == round(12 * math.sqrt(height * width) / 224)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    padded = np.pad(flat, [(0, 0), (radius, radius), (radius, radius), (0, 0)], mode="reflect")
    along_y = sum(t * padded[:, i:i + height] for i, t in enumerate(taps))
    want = sum(t * along_y[:, :, i:i + width] for i, t in enumerate(taps))
    got = bl.confetti_noise(params, height, width).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert got.max() > 0.1


def test_confetti_is_subtracted_from_white_images():
    images = np.ones((8, 48, 48, 3), np.float32)
    params = bl.sample_confetti(SEED, 8, 48, 48)
    out = bl.apply_confetti(tf.constant(images), params).numpy()
    noise = bl.confetti_noise(params, 48, 48).numpy()
    np.testing.assert_allclose(out, np.clip(1.0 - noise, 0, 1), atol=1e-6)
    assert np.all(out.reshape(8, -1).min(1) < 0.5)


def test_confetti_sizes_follow_scale_size():
    full = _np(bl.sample_confetti(SEED, 64, 256, 256))
    crop = _np(bl.sample_confetti(SEED, 64, 64, 64, scale_size=(256, 256)))
    np.testing.assert_array_equal(crop["side"], full["side"])
    assert bl.confetti_blur(64, 64, (256, 256)) == bl.confetti_blur(256, 256)


# =============================================================================================
# All ops: uint8 input, eager vs tf.data vs XLA, make_views and patch views.

OPS = {
    "cutout": lambda im, s: bl.cutout(im, s, "grey"),
    "cutout_mean": lambda im, s: bl.cutout(im, s, "mean"),
    "cutout_color": lambda im, s: bl.cutout(im, s, "color"),
    "scar_cutout": lambda im, s: bl.scar_cutout(im, s),
    "confetti": lambda im, s: bl.confetti(im, s),
}


@pytest.mark.parametrize("op", sorted(OPS))
def test_uint8_input_equals_scaled_float_input(op):
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 256, size=(6, 40, 56, 3), dtype=np.uint8)
    got = OPS[op](tf.constant(raw), SEED)
    assert got.dtype == tf.float32
    want = OPS[op](tf.constant(raw.astype(np.float32) / 255.0), SEED)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=0, atol=1e-6)


def test_ops_match_eager_under_xla_and_in_tf_data():
    """Every op in one graph (one XLA compile). Ops that only select and copy values give the
    same bits; the image mean (Cutout mean) and the blur (Confetti) sum in a different order
    under XLA, so they match to float rounding."""
    height, width, batch = 48, 80, 16
    images = tf.constant(coord_images(batch, height, width))

    def fn(s):
        return {name: op(images, s) for name, op in OPS.items()}

    seeds = tf.constant([[1, 17], [2, 17]])
    eager = [{k: v.numpy() for k, v in fn(s).items()} for s in seeds]
    xla = tf.function(fn, jit_compile=True)
    ds = tf.data.Dataset.from_tensor_slices(seeds).map(fn)
    for s, e, piped in zip(seeds, eager, ds):
        compiled = xla(s)
        for name in OPS:
            for got in (piped[name].numpy(), compiled[name].numpy()):
                if name in ("cutout_mean", "confetti"):
                    np.testing.assert_allclose(got, e[name], rtol=0, atol=2e-6, err_msg=name)
                else:
                    np.testing.assert_array_equal(got, e[name], err_msg=name)
    for name in OPS:  # different seeds, different views
        assert np.abs(eager[0][name] - eager[1][name]).max() > 0.1, name


@pytest.mark.parametrize("task", NEW_TASKS)
def test_make_views_and_patch_views_shapes_and_labels(task):
    n_views = len(TASK_VIEWS[task])
    size = (48, 48) if task == "rotation" else (48, 80)
    images = tf.constant(_noise_images(3, *size))
    views, labels = tasks.make_views(images, SEED, task)
    assert views.shape == (3 * n_views, *size, 3) and views.dtype == tf.float32
    np.testing.assert_array_equal(labels.numpy(), np.repeat(np.arange(n_views), 3))
    assert 0.0 <= views.numpy().min() and views.numpy().max() <= 1.0
    # The patch model: views of 32x32 crops, labelled the same way.
    views, labels = patches.make_patch_views(images, SEED, task, (32, 32), AugmentConfig())
    assert views.shape == (3 * n_views, 32, 32, 3)
    np.testing.assert_array_equal(labels.numpy(), np.repeat(np.arange(n_views), 3))


# =============================================================================================
# Flagfiles.


def _flag_values(path, root):
    """Flag name -> value from a flagfile, nested --flagfile first, later values winning."""
    values = {}
    for line in (root / path).read_text().splitlines():
        line = line.strip()
        if not line.startswith("--"):
            continue
        name, _, value = line[2:].partition("=")
        if name == "flagfile":
            values.update(_flag_values(value, root))
        else:
            values[name] = value
    return values


@pytest.mark.parametrize("task", NEW_TASKS)
def test_baseline_flagfiles_set_task_batch_and_quote_the_paper(task):
    import pathlib

    from cutpaste_tf.reporting import paper

    root = pathlib.Path(__file__).resolve().parents[2]
    path = f"configs/{task}.flags"
    header = [ln for ln in (root / path).read_text().splitlines() if ln.startswith("#")]
    assert any(f"--flagfile={path}" in ln for ln in header), "header lacks the command"
    assert any(ln.startswith("# Runtime:") for ln in header)
    values = _flag_values(path, root)
    assert values["task"] == task
    train = config_lib.TrainConfig(task=task, batch_size=int(values["batch_size"]),
                                   image_size=(int(values["image_size"]),) * 2)
    assert train.sources_per_batch == 64 // len(TASK_VIEWS[task])
    mean, se = paper.paper_results(task)[1]["all"]  # Table 1 where it has the column
    paper_line = next(ln for ln in header if ln.startswith("# Paper:"))
    assert f"{mean} +- {se}" in paper_line, paper_line
