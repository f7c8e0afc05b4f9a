"""Small configs, models and batches for the training tests (this folder is on sys.path while
they run)."""

import numpy as np
import tensorflow as tf

from cutpaste_tf.models import build_cutpaste_model

SMALL = dict(image_size=(32, 32), batch_size=6, epochs=1, log_every=1, checkpoint_every=2)


def random_batches(config, seed=0):
    """Random views with balanced labels, one batch after another."""
    rng = np.random.default_rng(seed)
    while True:
        views = rng.random((config.batch_size, *config.image_size, 3), dtype=np.float32)
        labels = np.repeat(np.arange(config.num_views, dtype=np.int32), config.sources_per_batch)
        yield tf.constant(views), tf.constant(labels)


def small_model(config):
    """A seeded ResNet-18 classifier with a small head."""
    tf.keras.utils.set_random_seed(0)
    return build_cutpaste_model(config.num_classes, head_widths=(16,),
                                input_shape=(*config.image_size, 3))
