"""Decision thresholds from normal images only (never from test labels).

Three ways, in order of preference:

- **Labelled validation folders** (normal and defective images the user set aside): the threshold
  that maximises F1 on them (:func:`f1_threshold`).
- **Held-out normal images** (``val_fraction`` of train/good, excluded from CutPaste training and
  from the density fit): the ``quantile`` of their scores, taken as an order statistic
  (:func:`quantile_threshold`). With ``n`` held-out images, the ``k = ceil((n + 1) q)``-th
  smallest score is exceeded by a new normal image's score with probability at most ``1 - q``
  (the images are exchangeable with new normal images; this is split-conformal prediction). A
  quantile needs ``n >= q / (1 - q)`` images (19 for 0.95, 99 for 0.99); with fewer, the largest
  score is used and the false-alarm bound is only ``1 / (n + 1)``: ``achieved_quantile`` records it.
- **No held-out images** (``val_fraction=0``, the paper's protocol): k-fold out-of-fold scores
  of the training features (:func:`out_of_fold_scores`: fit the density on k-1 folds, score the
  remaining one), then the same quantile. The representation was trained on these images, so
  their scores run lower than those of unseen normal images and the threshold comes out low
  (more false alarms than ``1 - q``): a fallback, not a guarantee. Patch models use the
  training images' own scores instead (``training_quantile``: in-sample, lower still), as an
  out-of-fold fit of one Gaussian per location per fold costs as much as the fit times k.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Optional, Sequence

import numpy as np

# How a threshold was set.
METHODS = ("validation_quantile", "out_of_fold_quantile", "training_quantile", "labelled_f1",
           "manual")


@dataclasses.dataclass(frozen=True)
class Threshold:
    """A decision threshold (anomalous if ``score > value``) and how it was set."""

    value: float
    method: str
    quantile: Optional[float] = None
    achieved_quantile: Optional[float] = None  # the level the order statistic supports
    num_images: int = 0
    note: str = ""

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"threshold method must be one of {METHODS}, got {self.method!r}")
        if not math.isfinite(self.value):
            raise ValueError(f"threshold must be a finite number, got {self.value}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def shortfall(self) -> str:
        """One line saying that too few normal images support the quantile asked for (so more
        normal images than ``1 - quantile`` will be flagged), "" when they do."""
        if self.quantile is None or self.achieved_quantile is None or (
                self.achieved_quantile >= self.quantile - 1e-9):
            return ""
        return (f"warning: threshold: {self.note or f'quantile {self.quantile} not reached'}; "
                f"the threshold is the highest of the {self.num_images} normal scores, so "
                f"expect more than {100 * (1 - self.quantile):.3g}% of normal images flagged "
                "(hold out more normal images, or ask for a lower quantile)")


def split_holdout(files: Sequence[str], fraction: float, seed: int, min_train: int = 2,
                  given: Sequence[str] = ()) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Deterministically splits ``files`` into (train, held-out) by ``seed``; both keep file order.

    ``round(fraction * n)`` images (at least one when ``fraction > 0``) are held out. A dataset's
    own normal validation images (``given``: ``CategoryData.val_files``, e.g. MVTec LOCO AD's
    validation/good) replace the split: then ``(files, given)`` is returned and ``fraction`` is
    not applied.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {fraction}")
    files = tuple(files)
    if given:
        return files, tuple(given)
    if fraction == 0.0:
        return files, ()
    count = max(1, int(round(fraction * len(files))))
    if len(files) - count < min_train:
        raise ValueError(f"val_fraction={fraction} of {len(files)} training images leaves "
                         f"{len(files) - count} to train on; need at least {min_train}")
    held = set(np.random.default_rng(seed).permutation(len(files))[:count].tolist())
    train = tuple(f for i, f in enumerate(files) if i not in held)
    val = tuple(f for i, f in enumerate(files) if i in held)
    return train, val


def quantile_threshold(scores: Sequence[float], quantile: float,
                       method: str = "validation_quantile") -> Threshold:
    """The ``ceil((n + 1) q)``-th smallest of ``n`` normal scores (the largest if that is > n)."""
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"threshold_quantile must be in (0, 1), got {quantile}")
    x = np.sort(np.asarray(scores, dtype=np.float64))
    if x.ndim != 1 or x.size == 0:
        raise ValueError("need at least one normal score to set a threshold")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{int(np.sum(~np.isfinite(x)))} normal scores are not finite")
    n = x.size
    k = math.ceil((n + 1) * quantile - 1e-9)
    note = ""
    if k > n:
        k = n
        note = (f"{n} images support at most quantile {n / (n + 1):.3f}; need "
                f"{math.ceil(quantile / (1 - quantile) - 1e-9)} for {quantile}")
    return Threshold(float(x[k - 1]), method, quantile, k / (n + 1), n, note)


def out_of_fold_scores(features: np.ndarray, fit: Callable[[np.ndarray], Callable],
                       folds: int = 10, seed: int = 0) -> np.ndarray:
    """Scores of each row of ``features`` under a density fitted without its fold.

    ``fit(train_features)`` returns a function from features to scores. ``folds`` is capped at
    ``n`` (leave-one-out for small sets); each fit keeps at least two rows.
    """
    x = np.asarray(features)
    n = x.shape[0]
    folds = min(folds, n)
    if folds < 2 or n - math.ceil(n / folds) < 2:
        raise ValueError(f"out-of-fold scores need at least 3 training images, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    scores = np.empty(n, dtype=np.float64)
    for part in np.array_split(order, folds):
        keep = np.setdiff1d(order, part)
        scores[part] = np.asarray(fit(x[keep])(x[part]), dtype=np.float64)
    return scores


def f1_threshold(scores: Sequence[float], labels: Sequence[int]) -> Threshold:
    """The threshold maximising F1 (defective = 1 = positive) on labelled validation scores.

    Placed halfway between the last score called normal and the next one; ties in F1 go to the
    higher threshold (fewer false alarms).
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(int)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(f"scores and labels must be 1-D and the same length, got {s.shape}, "
                         f"{y.shape}")
    if not (np.any(y == 1) and np.any(y == 0)):
        raise ValueError("an F1 threshold needs both normal (0) and defective (1) images")
    values = np.unique(s)
    candidates = np.concatenate([[values[0] - 1.0], values])
    best, best_f1 = candidates[0], -1.0
    for t in candidates:
        pred = s > t
        tp = np.sum(pred & (y == 1))
        f1 = 2 * tp / max(np.sum(pred) + np.sum(y == 1), 1)
        if f1 >= best_f1:
            best, best_f1 = t, f1
    above = values[values > best]
    value = (best + above[0]) / 2 if above.size else best
    return Threshold(float(value), "labelled_f1", num_images=int(s.size),
                     note=f"F1 {best_f1:.4f} on the labelled validation images")


def record(normal: Threshold, normal_scores: Sequence[float], normal_files: Sequence[str],
           final: Threshold, labelled: Optional[tuple[Sequence[str], Sequence[int],
                                                       Sequence[float]]] = None) -> dict:
    """What a category's ``threshold.json`` holds, for image and patch models alike.

    ``normal`` is the threshold set from ``normal_scores`` (of ``normal_files``, or of the
    training images when there are none); ``final`` is the one in use (``normal``, or the F1
    threshold of the ``labelled`` (files, labels, scores) validation set). The normal scores
    are kept so that a new quantile can be taken later (:func:`from_record`).
    """
    out = {"normal_method": normal.method, "normal_threshold": normal.to_dict(),
           "normal_scores": np.asarray(normal_scores).tolist(),
           "normal_files": list(normal_files)}
    if labelled is not None:
        paths, labels, scores = labelled
        out.update(labelled_files=list(paths), labelled_labels=[int(v) for v in labels],
                   labelled_scores=np.asarray(scores).tolist())
    out["threshold"] = final.to_dict()
    return out


def from_record(record: dict, value: Optional[float] = None,
                quantile: Optional[float] = None) -> Threshold:
    """A threshold for a trained category, given its ``threshold.json`` ``record``: ``value``
    if given (a manual one), else the ``quantile`` of the stored normal scores if given, else
    the stored threshold."""
    if value is not None:
        return Threshold(float(value), "manual", note="set with launch.export --threshold")
    if quantile is not None:
        if not record.get("normal_scores"):
            raise ValueError("threshold.json holds no normal scores to take a quantile of")
        return quantile_threshold(record["normal_scores"], quantile, record["normal_method"])
    return Threshold(**record["threshold"])


def decision_metrics(scores: Sequence[float], labels: Sequence[int], value: float) -> dict:
    """False-positive rate, recall, precision and F1 of ``score > value`` (for reporting only)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(int)
    pred = s > value
    tp, fp = int(np.sum(pred & (y == 1))), int(np.sum(pred & (y == 0)))
    pos, neg = int(np.sum(y == 1)), int(np.sum(y == 0))
    precision = tp / max(tp + fp, 1)
    recall = tp / max(pos, 1)
    return {
        "false_positive_rate": fp / max(neg, 1),
        "recall": recall,
        "precision": precision,
        "f1": 2 * precision * recall / max(precision + recall, 1e-12),
    }
