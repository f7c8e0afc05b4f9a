"""Density estimation on learned features: anomaly scores from feature vectors (higher = more
anomalous).

- :class:`GaussianDensity` (:mod:`cutpaste_tf.density.gaussian`): the Gaussian density
  estimator (GDE) of the paper's Eq. 2, Mahalanobis distance under a Ledoit-Wolf covariance;
- :class:`GaussianKDE` (:mod:`cutpaste_tf.density.kde`): Gaussian kernel density.

:func:`fit_density` builds either by name; :func:`save_density` / :func:`load_density` persist
them as ``.npz`` files without pickle (each estimator's ``to_numpy_dict`` arrays, the package
version and string metadata).
"""

from __future__ import annotations

import io
import zipfile
from typing import Mapping, Optional

import numpy as np
import tensorflow as tf

from cutpaste_tf import files, release
from cutpaste_tf.density.gaussian import GaussianDensity
from cutpaste_tf.density.kde import GaussianKDE

Density = GaussianDensity | GaussianKDE

DENSITIES: dict[str, type[GaussianDensity] | type[GaussianKDE]] = {
    "gde": GaussianDensity,
    "kde": GaussianKDE,
}

VERSION_ENTRY = "cutpaste_tf_version"
_META_PREFIX = "meta_"


def fit_density(kind: str, features: np.ndarray, normalize: bool = True) -> Density:
    """Build and fit the density estimator named ``kind`` ("gde" or "kde") on [N, D] features."""
    if kind not in DENSITIES:
        raise ValueError(f"unknown density kind {kind!r}; choices: {', '.join(sorted(DENSITIES))}")
    x = np.asarray(features)
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-D array [num_samples, dim], got shape {x.shape}")
    if kind == "gde":
        return GaussianDensity(dim=x.shape[1], normalize=normalize).fit(x)
    return GaussianKDE(num_train=x.shape[0], dim=x.shape[1], normalize=normalize).fit(x)


def save_density(density: Density, path: str,
                 metadata: Optional[Mapping[str, str]] = None) -> None:
    """Write the estimator to an ``.npz`` file atomically (temp file, then rename); no pickle.

    The file also records the package version and any string ``metadata`` (the runner stores
    the backbone and the feature the density models), which :func:`load_density` can check.
    """
    arrays = density.to_numpy_dict()
    arrays[VERSION_ENTRY] = np.array(release.__version__)
    for key, value in (metadata or {}).items():
        arrays[_META_PREFIX + key] = np.array(str(value))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    files.write_bytes(path, buf.getvalue())


def load_density(path: str, expect: Optional[Mapping[str, str]] = None) -> Density:
    """Load an estimator written by ``save_density``; raises naming ``path`` if it is unusable.

    Never unpickles: object arrays in the file are refused. The file must come from this
    package's release series (major.minor), and each ``expect`` entry (for example
    ``{"backbone": "resnet18"}``) must match the metadata it was saved with.
    """
    arrays = _read_npz(path)
    if "kind" not in arrays:
        raise ValueError(f"density file {path} has no 'kind' entry")
    kind = str(arrays["kind"])
    if kind not in DENSITIES:
        raise ValueError(
            f"density file {path} has unknown kind {kind!r}; choices: {', '.join(sorted(DENSITIES))}"
        )
    entry = arrays.pop(VERSION_ENTRY, None)
    release.check(None if entry is None else str(entry), f"density file {path}",
                  "fit the density again")
    meta = {k[len(_META_PREFIX):]: str(arrays.pop(k)) for k in list(arrays)
            if k.startswith(_META_PREFIX)}
    for key, value in (expect or {}).items():
        if meta.get(key) != str(value):
            raise ValueError(f"density file {path} was fitted with {key} {meta.get(key)!r}, "
                             f"expected {str(value)!r}")
    try:
        return DENSITIES[kind].from_numpy_dict(arrays)
    except (KeyError, ValueError, TypeError) as e:
        raise ValueError(f"density file {path} has invalid {kind} parameters: {e}") from None


def _read_npz(path: str) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file at ``path``, refusing pickled data and naming ``path``
    when the file is missing, corrupt or not an archive."""
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"density file {path} does not exist")
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array, not an .npz archive")
        with loaded:
            return {k: loaded[k] for k in loaded.files}
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise ValueError(f"density file {path} holds pickled (object) data, which is never "
                             "loaded: it was not written by save_density") from None
        raise ValueError(f"density file {path} is corrupt or not an .npz file: {e}") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise ValueError(f"density file {path} is corrupt or not an .npz file: {e}") from None
