"""Batch normalisation whose moving statistics stay equal on every replica."""

from __future__ import annotations

from keras import layers


class BatchNorm(layers.BatchNormalization):
    """``BatchNormalization`` with its moving mean and variance averaged across replicas.

    Keras creates the moving statistics with no cross-replica aggregation, so under a
    ``tf.distribute`` strategy each replica would keep its own (differing) copy and a checkpoint
    would hold only the first replica's. Here every update is the mean of the replicas'
    updates. Training itself normalises with each replica's own batch statistics, as usual;
    on one device nothing changes.
    """

    def add_weight(self, *args, **kwargs):
        if not kwargs.get("trainable", True):
            kwargs.setdefault("aggregation", "mean")
        return super().add_weight(*args, **kwargs)
