"""Augmentation ops: CutPaste, Scar, colour jitter, proxy tasks, patches, baselines, synthetic
shapes, all pure batched TensorFlow with explicit seeds."""

from cutpaste_tf.ops.tasks import make_views

__all__ = ["make_views"]
