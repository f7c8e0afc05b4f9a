"""Does the proxy task reach the backbone? Gradient coherence of a model at its current weights.

A network learns its proxy task only if the gradients its backbone gets point the same way from
batch to batch. :func:`gradient_coherence` measures that directly, without training: the
backbone's gradient of the cross-entropy on several independent batches, their mean norm, and
the mean cosine between every two of them, once with the true labels and once with the labels
shuffled within each batch (the part of the gradient that has nothing to do with the task). A
model whose true-label coherence is no higher than its shuffled one sends its backbone noise
however large the gradient; docs/learning.md shows this for the eight-layer projection
head.
"""

from __future__ import annotations

import math
from typing import Iterable

import keras
import numpy as np
import tensorflow as tf

from cutpaste_tf.models.cutpaste_net import backbone_of


def backbone_gradient(model: keras.Model, views: tf.Tensor, labels: tf.Tensor) -> np.ndarray:
    """The flattened gradient of the mean cross-entropy w.r.t. the backbone's trainable
    weights, in training mode (batch statistics), without changing any weight."""
    variables = backbone_of(model).trainable_variables
    with tf.GradientTape() as tape:
        logits = tf.cast(model(views, training=True)["logits"], tf.float32)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    grads = tape.gradient(loss, variables)
    return np.concatenate([g.numpy().ravel() for g in grads])


def coherence(gradients: np.ndarray) -> dict:
    """Mean norm of ``[n, d]`` gradients and the mean pairwise cosine with its standard error
    (over the n(n-1)/2 pairs)."""
    norms = np.linalg.norm(gradients, axis=1)
    cos = (gradients @ gradients.T) / np.maximum(np.outer(norms, norms), 1e-30)
    pairs = cos[np.triu_indices(len(gradients), k=1)]
    return {"grad_norm": float(norms.mean()), "cosine": float(pairs.mean()),
            "cosine_se": float(pairs.std(ddof=1) / math.sqrt(len(pairs)))
            if len(pairs) > 1 else float("nan")}


def gradient_coherence(model: keras.Model, batches: Iterable[tuple[tf.Tensor, tf.Tensor]],
                       seed: int = 0) -> dict:
    """:func:`coherence` of the backbone gradients of ``batches`` (``(views, labels)``, two at
    least) with their true labels and with the labels shuffled within each batch.

    BatchNorm moving statistics are put back afterwards, so the model is left as it was.
    """
    moving = [(v, v.numpy()) for v in model.non_trainable_variables]
    rng = np.random.default_rng(seed)
    true, shuffled = [], []
    for views, labels in batches:
        true.append(backbone_gradient(model, views, labels))
        perm = rng.permutation(int(tf.shape(labels)[0]))
        shuffled.append(backbone_gradient(model, views, tf.gather(labels, perm)))
    for variable, value in moving:
        variable.assign(value)
    if len(true) < 2:
        raise ValueError("gradient coherence needs at least two batches")
    return {"true_labels": coherence(np.stack(true)),
            "shuffled_labels": coherence(np.stack(shuffled)), "batches": len(true)}
