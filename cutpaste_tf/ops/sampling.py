"""Counter-based random draws that give the same bits eagerly, in tf.data and under XLA.

``tf.random.stateless_uniform`` does not: its Philox stream inside an XLA cluster differs from
the one outside it, so the same seed would give different augmentations with
``jit_compile=True``. Here each value is an integer hash of (seed, position) computed with plain
uint32 arithmetic, which every backend evaluates identically (CPU, GPU, TPU, with or without
XLA). The hash is Wellons' "lowbias32" (bias ~0.17 in his avalanche test), applied twice; that
is ample for augmentation parameters, and the uniformity tests check it.

A seed is any int tensor of shape [2]; values are taken modulo 2**32.

The random bits are identical everywhere. Float draws can still differ in their last bit between
XLA and eager execution, because XLA fuses ``lo + u * (hi - lo)`` into one multiply-add that
rounds once; an integer derived from such a float (a patch side after rounding) then differs by
one in roughly 1 of 20,000 CutPaste patches. A run is bit-reproducible in either mode.
"""

from __future__ import annotations

import contextlib

import tensorflow as tf

_GOLDEN = 0x9E3779B9


def _mix(x: tf.Tensor) -> tf.Tensor:
    """lowbias32: a bijective avalanche hash of uint32 values."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(16, tf.uint32)))
    x = x * tf.constant(0x7FEB352D, tf.uint32)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(15, tf.uint32)))
    x = x * tf.constant(0x846CA68B, tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(16, tf.uint32)))


def _as_key(seed: tf.Tensor) -> tf.Tensor:
    """Folds a shape-[2] seed of any int dtype into one uint32 key."""
    seed = tf.convert_to_tensor(seed)
    if seed.dtype != tf.uint32:
        seed = tf.cast(tf.bitwise.bitwise_and(tf.cast(seed, tf.int64), 0xFFFFFFFF), tf.uint32)
    return _mix(seed[0] + tf.constant(_GOLDEN, tf.uint32) * _mix(seed[1] + 1))


def bits(shape, seed: tf.Tensor) -> tf.Tensor:
    """Uniform random uint32 values of the given shape."""
    key = _as_key(seed)
    count = tf.reduce_prod(tf.cast(shape, tf.int32))
    counter = tf.cast(tf.range(count), tf.uint32)
    draw = lambda: _mix(_mix(counter + key) ^ key)  # noqa: E731
    if _MATERIALIZE[0]:
        return tf.reshape(materialized(draw, key, tf.zeros_like(counter)), shape)
    return tf.reshape(draw(), shape)


_MATERIALIZE = [False]


@contextlib.contextmanager
def materializing():
    """While tracing inside this context, every draw is computed once into memory (see
    :func:`materialized`); the batched augmentation entry points use it. Outside it draws stay
    plain element-wise ops (which ``tf.vectorized_map`` can vectorise)."""
    previous = _MATERIALIZE[0]
    _MATERIALIZE[0] = True
    try:
        yield
    finally:
        _MATERIALIZE[0] = previous


def materialized(fn, key: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """``fn()``, computed once into memory even under XLA.

    XLA fuses cheap element-wise producers into their consumers, recomputing them per consumer
    element: a per-example parameter built from the hash would be recomputed for every pixel
    of an image it is broadcast over (a 5x slowdown of the augmentation). A loop is a fusion
    boundary; its trip count (1, or 2 for one key in 2**32 -- the body is idempotent) is
    unknown at compile time, so XLA cannot inline it away. ``like`` is a tensor of the
    result's shape and dtype (its values are not used).
    """
    key = tf.reshape(tf.convert_to_tensor(key), [-1])[0]
    trips = 1 + tf.cast(tf.equal(tf.cast(key, tf.uint32), tf.constant(0x5EED, tf.uint32)),
                        tf.int32)
    _, out = tf.while_loop(lambda i, _: i < trips, lambda i, _: (i + 1, fn()),
                           (tf.constant(0), like))
    return out


def split(seed: tf.Tensor, num: int) -> tf.Tensor:
    """``num`` independent uint32 seeds of shape [2] derived from ``seed``: shape [num, 2]."""
    return tf.reshape(bits([num * 2], seed), [num, 2])


def uniform(shape, seed: tf.Tensor, minval=0.0, maxval=1.0, dtype=tf.float32) -> tf.Tensor:
    """Uniform in [minval, maxval); for integer dtypes, integers in [minval, maxval)."""
    # 24 random bits make every float32 in [0, 1) a multiple of 2**-24, so u < 1 exactly.
    unit = tf.cast(tf.bitwise.right_shift(bits(shape, seed), tf.constant(8, tf.uint32)),
                   tf.float32) * (1.0 / (1 << 24))
    if dtype.is_integer:
        lo = tf.cast(minval, tf.float32)
        span = tf.cast(maxval, tf.float32) - lo
        value = tf.minimum(tf.floor(lo + unit * span), tf.cast(maxval, tf.float32) - 1.0)
        return tf.cast(value, dtype)
    lo = tf.cast(minval, tf.float32)
    hi = tf.cast(maxval, tf.float32)
    # lo + unit * (hi - lo) can round up to hi itself; keep the interval half-open.
    value = tf.minimum(lo + unit * (hi - lo), tf.math.nextafter(hi, lo))
    return tf.cast(tf.maximum(value, tf.minimum(lo, hi)), dtype)
