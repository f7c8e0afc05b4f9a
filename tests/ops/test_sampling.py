"""Tests for cutpaste_tf.ops.sampling: ranges, uniformity, determinism, seeds, XLA and tf.data.

All draws are deterministic functions of fixed seeds, so the statistical tests below can never
be flaky: a threshold that passes once passes forever, and a change to the generator that makes
the draws non-uniform (a wrong shift, a wrong scale, a weak mix) makes them fail.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from cutpaste_tf.ops import sampling

N_SEEDS = 2000


def _seeds(n: int = N_SEEDS, offset: int = 0, dtype=tf.int32) -> tf.Tensor:
    """n distinct shape-[2] seeds, consecutive in the first word (the hardest case for a hash)."""
    first = np.arange(offset, offset + n)
    return tf.constant(np.stack([first, np.full(n, 12345)], axis=1), dtype)


def _per_seed(fn, seeds: tf.Tensor, jit: bool = False) -> np.ndarray:
    """Runs fn(seed) for every row of seeds in one traced call."""
    return tf.function(lambda s: tf.vectorized_map(fn, s), jit_compile=jit)(seeds).numpy()


# ---------------------------------------------------------------------------------------------
# An independent NumPy model of the documented generator (lowbias32 of (seed, counter)).


def _np_mix(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


def _np_bits(n: int, seed) -> np.ndarray:
    with np.errstate(over="ignore"):
        s0, s1 = (np.uint32(int(v) % 2**32) for v in seed)
        inner = _np_mix(np.asarray(s1 + np.uint32(1)))
        key = _np_mix(np.asarray(s0 + np.uint32(0x9E3779B9) * inner))
        return _np_mix(_np_mix(np.arange(n, dtype=np.uint32) + key) ^ key)


def test_bits_match_numpy_model_of_lowbias32():
    for seed in [(0, 0), (1, 2), (2**31 - 1, 7), (17337256, 0)]:
        got = sampling.bits([257], tf.constant(seed, tf.int64)).numpy()
        assert got.dtype == np.uint32
        np.testing.assert_array_equal(got, _np_bits(257, seed))


# ---------------------------------------------------------------------------------------------
# Float draws.


@pytest.mark.parametrize("lo,hi", [(0.0, 1.0), (0.02, 0.15), (-0.1, 0.1), (-5.0, 3.0)])
def test_uniform_range_mean_variance_and_ks(lo, hi):
    # 2,000 seeds x 64 positions = 128,000 draws.
    x = _per_seed(lambda s: sampling.uniform([64], s, lo, hi), _seeds()).astype(np.float64)
    assert x.shape == (N_SEEDS, 64)
    assert x.min() >= np.float32(lo) and x.max() < np.float32(hi)
    n, width = x.size, hi - lo
    # Mean and variance of U[lo, hi): (lo + hi) / 2 and width^2 / 12; 5 standard errors.
    assert abs(x.mean() - (lo + hi) / 2) < 5 * width / np.sqrt(12 * n)
    var_se = width**2 * np.sqrt(1 / 180 / n)  # sd of the sample variance of a uniform
    assert abs(x.var() - width**2 / 12) < 5 * var_se
    # The whole range is used: both ends within 0.1% of the width.
    assert x.min() < lo + 1e-3 * width and x.max() > hi - 1e-3 * width
    assert stats.kstest(x.ravel(), stats.uniform(loc=lo, scale=width).cdf).pvalue > 1e-3
    # Chi-square over 100 equal bins.
    counts, _ = np.histogram(x, bins=100, range=(lo, hi))
    assert stats.chisquare(counts).pvalue > 1e-3


def test_uniform_is_uniform_across_seeds_at_each_position():
    # Samplers use one value per seed at a fixed position, so uniformity across consecutive
    # seeds matters as much as along one stream.
    x = _per_seed(lambda s: sampling.uniform([3], s), _seeds(20000))
    for column in x.T:
        assert stats.kstest(column, "uniform").pvalue > 1e-3
        counts, _ = np.histogram(column, bins=50, range=(0, 1))
        assert stats.chisquare(counts).pvalue > 1e-3


def test_uniform_has_no_correlation_between_neighbours():
    x = _per_seed(lambda s: sampling.uniform([2], s), _seeds(20000)).astype(np.float64)
    limit = 5 / np.sqrt(len(x))  # 5 standard errors of a correlation coefficient
    assert abs(np.corrcoef(x[:, 0], x[:, 1])[0, 1]) < limit  # adjacent positions
    assert abs(np.corrcoef(x[:-1, 0], x[1:, 0])[0, 1]) < limit  # adjacent seeds
    # Seeds differing only in the second word.
    y = _per_seed(lambda s: sampling.uniform([1], s), tf.reverse(_seeds(20000), axis=[1]))[:, 0]
    assert abs(np.corrcoef(y[:-1], y[1:])[0, 1]) < limit
    assert stats.kstest(y, "uniform").pvalue > 1e-3


def test_uniform_never_returns_maxval():
    """The docstring promises [minval, maxval); lo + u * (hi - lo) can round up to hi.

    Seed (17337256, 0) gives the largest possible 24-bit unit value 1 - 2**-24 at position 0
    (checked against the NumPy model above); 10 + (1 - 2**-24) * 15 rounds to 25.0 in float32.
    """
    seed = tf.constant([17337256, 0])
    assert (sampling.bits([1], seed).numpy()[0] >> 8) == 0xFFFFFF
    assert sampling.uniform([1], seed).numpy()[0] == np.float32(1 - 2**-24)  # unit range is fine
    bad = {}
    for lo, hi in [(10.0, 25.0), (2.0, 16.0), (0.02, 0.15), (-0.1, 0.1), (0.9, 1.1), (-45.0, 45.0)]:
        value = sampling.uniform([1], seed, lo, hi).numpy()[0]
        if not value < np.float32(hi):
            bad[(lo, hi)] = value
    assert not bad, f"uniform returned maxval: {bad}"


def test_uniform_shape_and_dtype():
    seed = tf.constant([3, 4])
    x = sampling.uniform([5, 7, 2], seed)
    assert x.shape == (5, 7, 2) and x.dtype == tf.float32
    assert sampling.uniform([4], seed, dtype=tf.float64).dtype == tf.float64
    assert sampling.uniform(tf.constant([6]), seed).shape == (6,)  # a tensor shape works too


# ---------------------------------------------------------------------------------------------
# Integer draws.


@pytest.mark.parametrize("lo,hi,dtype", [(0, 2, tf.int32), (3, 10, tf.int32), (-4, 5, tf.int32),
                                          (-3, 4, tf.int64), (0, 97, tf.int32)])
def test_integer_draws_cover_range_evenly(lo, hi, dtype):
    x = _per_seed(lambda s: sampling.uniform([64], s, lo, hi, dtype), _seeds())
    assert x.dtype == dtype.as_numpy_dtype
    values, counts = np.unique(x, return_counts=True)
    # Every integer of [lo, hi) appears, and nothing else (hi is excluded).
    np.testing.assert_array_equal(values, np.arange(lo, hi))
    assert stats.chisquare(counts).pvalue > 1e-3
    expected = x.size / (hi - lo)
    assert np.all(np.abs(counts - expected) < 6 * np.sqrt(expected))


def test_integer_draw_with_single_value():
    x = sampling.uniform([100], tf.constant([1, 1]), 7, 8, tf.int32).numpy()
    np.testing.assert_array_equal(x, np.full(100, 7))


# ---------------------------------------------------------------------------------------------
# Seeds, split and determinism.


def test_same_seed_same_draws_and_different_seeds_differ():
    seed = tf.constant([42, 7])
    a = sampling.uniform([1000], seed).numpy()
    np.testing.assert_array_equal(a, sampling.uniform([1000], tf.constant([42, 7])).numpy())
    np.testing.assert_array_equal(a, tf.function(sampling.uniform)([1000], seed).numpy())
    b = sampling.uniform([1000], tf.constant([43, 7])).numpy()
    c = sampling.uniform([1000], tf.constant([42, 8])).numpy()
    d = sampling.uniform([1000], tf.constant([7, 42])).numpy()  # word order matters
    for other in (b, c, d):
        assert np.mean(a == other) < 0.01


def test_all_seeds_give_distinct_streams():
    x = _per_seed(lambda s: sampling.bits([4], s), _seeds(5000))
    rows = {tuple(r) for r in x}
    assert len(rows) == len(x)


def test_seed_values_are_taken_modulo_2_32():
    ref = sampling.uniform([50], tf.constant([5, 0xFFFFFFFF], tf.uint32)).numpy()
    np.testing.assert_array_equal(ref, sampling.uniform([50], tf.constant([5, -1], tf.int32)).numpy())
    np.testing.assert_array_equal(ref, sampling.uniform([50], tf.constant([5, -1], tf.int64)).numpy())
    np.testing.assert_array_equal(
        ref, sampling.uniform([50], tf.constant([5 + 2**32, 2**33 - 1], tf.int64)).numpy())
    np.testing.assert_array_equal(
        sampling.uniform([50], tf.constant([5, 6], tf.int32)).numpy(),
        sampling.uniform([50], tf.constant([5, 6], tf.int64)).numpy())


def test_split_gives_distinct_seeds():
    parents = _seeds(1000)
    children = _per_seed(lambda s: sampling.split(s, 8), parents)
    assert children.shape == (1000, 8, 2) and children.dtype == np.uint32
    flat = {tuple(r) for r in children.reshape(-1, 2)}
    assert len(flat) == 8000  # distinct within and across parents
    # No child equals its parent, and the children's streams are not each other's.
    assert not np.any(np.all(children == parents.numpy()[:, None, :].astype(np.uint32), axis=-1))
    draws = _per_seed(
        lambda s: tf.vectorized_map(lambda c: sampling.uniform([16], c), sampling.split(s, 8)),
        parents[:50])
    for p in range(50):
        rows = {tuple(r) for r in draws[p]}
        assert len(rows) == 8


def test_split_is_deterministic_and_prefix_stable():
    seed = tf.constant([9, 9])
    a = sampling.split(seed, 5).numpy()
    np.testing.assert_array_equal(a, sampling.split(seed, 5).numpy())
    # Asking for more children does not change the first ones.
    np.testing.assert_array_equal(a, sampling.split(seed, 12).numpy()[:5])


def test_split_children_are_independent_uniform_streams():
    # First draw of child k over 5,000 parents: uniform for each k, uncorrelated between k.
    x = _per_seed(lambda s: tf.vectorized_map(lambda c: sampling.uniform([1], c)[0],
                                              sampling.split(s, 4)), _seeds(5000))
    for k in range(4):
        assert stats.kstest(x[:, k], "uniform").pvalue > 1e-3
    corr = np.corrcoef(x.T.astype(np.float64))
    assert np.all(np.abs(corr[np.triu_indices(4, 1)]) < 5 / np.sqrt(len(x)))


# ---------------------------------------------------------------------------------------------
# Same bits eagerly, in a graph, under XLA and in tf.data.


def _compare_xla(draw, seeds):
    """draw(seed) -> tuple of tensors; eager per seed vs a graph vs XLA, all bit-exact."""
    eager = [np.stack(v) for v in zip(*[[t.numpy() for t in draw(s)] for s in seeds[:20]])]
    graph = tf.function(lambda s: tf.vectorized_map(draw, s))(seeds)
    xla = tf.function(lambda s: tf.vectorized_map(draw, s), jit_compile=True)(seeds)
    xla_one = tf.function(draw, jit_compile=True)
    for e, g, x in zip(eager, graph, xla):
        np.testing.assert_array_equal(g.numpy()[:20], e)
        np.testing.assert_array_equal(x.numpy(), g.numpy())
    for i in range(5):  # one seed at a time, not vectorised
        for e, x in zip(draw(seeds[i]), xla_one(seeds[i])):
            np.testing.assert_array_equal(x.numpy(), e.numpy())


def test_xla_matches_eager_bit_exactly_for_bits_split_ints_and_unit_floats():
    def draw(s):
        return (sampling.bits([8], s), sampling.split(s, 3), sampling.uniform([8], s),
                sampling.uniform([8], s, -5, 6, tf.int32), sampling.uniform([8], s, -16, 17, tf.int64))

    _compare_xla(draw, _seeds(1000))


def test_xla_float_ranges_match_eager_to_one_ulp():
    """Float draws on [lo, hi) agree with eager to the last bit or one ulp under XLA.

    The random bits are identical (test above), but on CPU XLA contracts
    ``minval + unit * (maxval - minval)`` into a fused multiply-add that rounds once instead of
    twice, so about half the draws differ in the last bit; the module documents this.
    """
    def draw(s):
        return (sampling.uniform([8], s, -0.1, 0.1), sampling.uniform([8], s, 0.9, 1.1),
                sampling.uniform([8], s, 0.02, 0.15))

    seeds = _seeds(1000)
    graph = tf.function(lambda s: tf.vectorized_map(draw, s))(seeds)
    xla = tf.function(lambda s: tf.vectorized_map(draw, s), jit_compile=True)(seeds)
    for (lo, hi), g, x in zip([(-0.1, 0.1), (0.9, 1.1), (0.02, 0.15)], graph, xla):
        g, x = g.numpy(), x.numpy()
        # One rounding of lo + u * (hi - lo): at most an ulp of the range's largest magnitude.
        ulp = np.spacing(np.float32(max(abs(lo), abs(hi))))
        assert np.abs(g - x).max() <= ulp, f"XLA draws differ by {np.abs(g - x).max()}"
        assert (g == x).mean() > 0.2  # many draws are still bit-identical


def test_tf_data_map_matches_eager():
    seeds = _seeds(64)
    ds = tf.data.Dataset.from_tensor_slices(seeds).map(
        lambda s: (sampling.uniform([8], s, 0.9, 1.1), sampling.split(s, 2)),
        num_parallel_calls=2, deterministic=True)
    for i, (u, sp) in enumerate(ds):
        np.testing.assert_array_equal(u.numpy(), sampling.uniform([8], seeds[i], 0.9, 1.1).numpy())
        np.testing.assert_array_equal(sp.numpy(), sampling.split(seeds[i], 2).numpy())
