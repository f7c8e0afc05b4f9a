"""CutPaste (Li et al., CVPR 2021) in TensorFlow 2 / Keras 3."""

from cutpaste_tf.release import __version__  # noqa: F401  (the package's release)
