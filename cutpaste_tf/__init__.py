"""CutPaste (Li et al., CVPR 2021) in TensorFlow 2 / Keras 3.

The front door (:mod:`cutpaste_tf.api`, imported when first used)::

    from cutpaste_tf import train, load
    result = train(data_dir="testdata", category="washer", model_dir="runs/washer")
    scores = load("runs/washer").score("testdata/washer/test")
"""

from cutpaste_tf.release import __version__  # noqa: F401  (the package's release)

_API = ("train", "experiment", "load", "RunResult", "ExperimentResult", "Scorer", "Scores",
        "DriftWarning")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    """The front door's names, from :mod:`cutpaste_tf.api` on first use (importing the
    package alone stays light: no TensorFlow)."""
    if name in _API:
        from cutpaste_tf import api
        return getattr(api, name)
    raise AttributeError(f"module 'cutpaste_tf' has no attribute {name!r}")
