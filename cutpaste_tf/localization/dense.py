"""Dense patch embeddings (Appendix A.5): every ``patch x patch`` window at ``stride``.

For an ``H x W`` image the grid is ``((H - patch) // stride + 1) x ((W - patch) // stride + 1)``
locations: 57 x 57 for the paper's 32x32 patches at stride 4 on 256x256 images, 13 x 13 for
16x16 patches at stride 4 on 64x64. Location ``(i, j)`` is the patch whose top-left pixel is
``(i * stride, j * stride)``. When ``H - patch`` is not a multiple of the stride, the last
``(H - patch) % stride`` rows (columns) are in no patch's top-left range but still inside the
last patches only partially; :mod:`cutpaste_tf.localization.upsample` fills them by edge
replication.

The patches are cut with ``tf.image.extract_patches`` and run through the model in fixed-size
chunks inside a ``tf.while_loop`` (``tf.map_fn`` with ``parallel_iterations=1``), so the
activations held at once are those of one chunk, whatever the grid size, and the same graph
runs eagerly, in a ``tf.function`` and in the exported SavedModel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf


def grid_size(image_size: Sequence[int], patch_size: int, stride: int) -> tuple[int, int]:
    """(rows, cols) of the dense score map for an image of ``image_size`` (height, width)."""
    height, width = int(image_size[0]), int(image_size[1])
    if patch_size > min(height, width):
        raise ValueError(f"patch size {patch_size} is larger than the {height}x{width} image")
    return (height - patch_size) // stride + 1, (width - patch_size) // stride + 1


def extract(images: tf.Tensor, patch_size: int, stride: int) -> tf.Tensor:
    """``[B, H, W, C]`` -> ``[B, rows, cols, patch, patch, C]``, location-major."""
    channels = images.shape[-1]
    windows = tf.image.extract_patches(images, sizes=[1, patch_size, patch_size, 1],
                                       strides=[1, stride, stride, 1], rates=[1, 1, 1, 1],
                                       padding="VALID")
    shape = tf.shape(windows)
    return tf.reshape(windows, [shape[0], shape[1], shape[2], patch_size, patch_size, channels])


def dense_features(embed: Callable[[tf.Tensor], tf.Tensor], images: tf.Tensor, patch_size: int,
                   stride: int, chunk_size: int = 512) -> tf.Tensor:
    """``[B, H, W, 3]`` -> ``[B, rows, cols, D]``: ``embed`` of every patch, in chunks.

    ``embed`` maps ``[n, patch, patch, 3]`` to ``[n, D]`` with a static ``D``.
    """
    patches = extract(images, patch_size, stride)
    shape = tf.shape(patches)
    batch, rows, cols = shape[0], shape[1], shape[2]
    flat = tf.reshape(patches, [-1, patch_size, patch_size, images.shape[-1]])
    total = tf.shape(flat)[0]
    chunk = tf.maximum(tf.minimum(chunk_size, total), 1)  # no padding work for small inputs
    num_chunks = (total + chunk - 1) // chunk
    flat = tf.pad(flat, [[0, num_chunks * chunk - total], [0, 0], [0, 0], [0, 0]])
    chunks = tf.reshape(flat, [num_chunks, chunk, patch_size, patch_size, images.shape[-1]])
    dim = embed(tf.zeros([1, patch_size, patch_size, images.shape[-1]])).shape[-1]
    features = tf.map_fn(lambda c: tf.cast(embed(c), tf.float32), chunks,
                         fn_output_signature=tf.TensorSpec([None, dim], tf.float32),
                         parallel_iterations=1)
    features = tf.reshape(features, [-1, dim])[:total]
    return tf.reshape(features, [batch, rows, cols, dim])


def model_embedder(model, feature: str = "pooled") -> Callable[[tf.Tensor], tf.Tensor]:
    """The ``feature`` output of a CutPaste model in inference mode, as an ``embed`` function."""
    return lambda x: model(x, training=False)[feature]


class DenseEmbedder:
    """Compiled dense feature extraction for one model, image size and patch grid."""

    def __init__(self, model, image_size: Sequence[int], patch_size: int, stride: int,
                 feature: str = "pooled", chunk_size: int = 512):
        self.image_size = tuple(int(s) for s in image_size)
        self.grid = grid_size(self.image_size, patch_size, stride)
        embed = model_embedder(model, feature)
        spec = tf.TensorSpec([None, *self.image_size, 3], tf.float32)
        self._fn = tf.function(
            lambda x: dense_features(embed, x, patch_size, stride, chunk_size),
            input_signature=[spec])

    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        """Preprocessed ``[B, H, W, 3]`` images -> ``[B, rows, cols, D]`` features."""
        return self._fn(images)
