"""AUROC, seed statistics (the paper's mean ± standard error and group averages) and the pixel
metrics of localisation (pixel AUROC, AU-PRO). The Markdown result tables built from them are in
:mod:`cutpaste_tf.reporting.tables`.

Conventions: labels are 1 for anomalous and 0 for normal, and a higher score means more anomalous.
Per-category results passed to ``summarize`` are AUROCs as fractions in [0, 1] (what ``auroc``
returns): one float per category, or a sequence with one value per seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Optional

import numpy as np
from sklearn.metrics import roc_auc_score

from cutpaste_tf.data.mvtec import MVTEC_KINDS

KIND_GROUPS: tuple[str, ...] = ("texture", "object")
# The rows of every table's averages: each kind, then every category together.
GROUPS: tuple[str, ...] = (*KIND_GROUPS, "all")

# (mean, standard error); the standard error is None for a single value (see mean_and_stderr).
MeanSe = tuple[float, Optional[float]]


def auroc(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve of anomaly ``scores`` against 0/1 ``labels`` (1 = anomalous)."""
    y = np.asarray(labels).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape[0] != s.shape[0]:
        raise ValueError(f"auroc: {y.shape[0]} labels but {s.shape[0]} scores")
    if y.size == 0:
        raise ValueError("auroc: no samples")
    if y.dtype == bool:
        y = y.astype(np.int64)
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:
        raise ValueError(f"auroc: labels must be 0 (normal) or 1 (anomalous), got values {sorted(values)}")
    if len(values) < 2:
        only = "normal (0)" if values == {0} else "anomalous (1)"
        raise ValueError(f"auroc: only {only} samples present; AUROC needs both classes")
    bad = int(np.sum(~np.isfinite(s)))
    if bad:
        raise ValueError(f"auroc: {bad} of {s.size} scores are NaN or infinite")
    return float(roc_auc_score(y, s))


def mean_and_stderr(values: Sequence[float]) -> MeanSe:
    """Mean and standard error of seed results: the sample std (ddof=1) over sqrt(n).

    The one convention of the package for a single value: it has no standard error (None), so
    a table prints no ± for it and a group average over it has none either.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        raise ValueError("mean_and_stderr: no values")
    if v.size == 1:
        return float(v[0]), None
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size))


def seed_stat(values: Sequence[float]) -> dict:
    """:func:`mean_and_stderr` as JSON: ``{"mean", "se", "n"}`` ("se" None for one value)."""
    mean, se = mean_and_stderr(values)
    return {"mean": mean, "se": se, "n": len(values)}


def average_of_mean_and_stderr(stats: Sequence[tuple[float, float | None]]
                               ) -> tuple[float, float | None]:
    """The paper's group average (Sec. 4.1, "the average of mean and standard errors"): the
    mean of the categories' means ± the mean of their standard errors.

    ``stats`` holds one (mean, se) per category; the error is None when some category has
    none (a single seed). This is not the standard error of the average itself.
    """
    if not stats:
        raise ValueError("average_of_mean_and_stderr: no categories")
    mean = float(np.mean([m for m, _ in stats]))
    errors = [se for _, se in stats]
    return mean, (None if any(se is None for se in errors) else float(np.mean(errors)))


def as_values(result: float | Sequence[float]) -> list[float]:
    """One category's result as a list of per-seed values."""
    if isinstance(result, (int, float, np.floating, np.integer)):
        return [float(result)]
    values = [float(x) for x in np.asarray(result, dtype=np.float64).reshape(-1)]
    if not values:
        raise ValueError("empty result list")
    return values


def _kind_of(category: str, kinds: Mapping[str, str]) -> str:
    """The "texture"/"object" group of a category, with a clear error when it is missing or invalid."""
    if category not in kinds:
        raise ValueError(
            f"no kind given for category {category!r}; kinds must map it to one of {KIND_GROUPS}"
        )
    kind = kinds[category]
    if kind not in KIND_GROUPS:
        raise ValueError(f"category {category!r} has kind {kind!r}; expected one of "
                         f"{KIND_GROUPS}")
    return kind


def summarize(
    per_category: Mapping[str, float | Sequence[float]],
    kinds: Mapping[str, str] | None = None,
) -> dict:
    """Per-category (mean, stderr) and Table-1-style group averages.

    ``kinds`` maps each category to "texture" or "object" (default: the MVTec AD grouping).
    Returns ``{"per_category": {cat: (mean, se)}, "num_values": {cat: n},
    "averages": {"texture"|"object"|"all": (mean, se)}}``. As in the paper, a group's average is
    the mean of its categories' means together with the mean of their standard errors
    (:func:`average_of_mean_and_stderr`); "all"
    averages over every category (not over the two group averages). Groups without categories
    are left out.
    """
    if not per_category:
        raise ValueError("summarize: no categories")
    kinds = MVTEC_KINDS if kinds is None else kinds
    per_cat: dict[str, MeanSe] = {}
    counts: dict[str, int] = {}
    groups: dict[str, list[str]] = {g: [] for g in KIND_GROUPS}
    for category, result in per_category.items():
        try:
            values = as_values(result)
        except ValueError as e:
            raise ValueError(f"summarize: category {category!r}: {e}") from None
        per_cat[category] = mean_and_stderr(values)
        counts[category] = len(values)
        groups[_kind_of(category, kinds)].append(category)
    groups["all"] = list(per_category)

    averages: dict[str, MeanSe] = {}
    for group, cats in groups.items():
        if cats:
            averages[group] = average_of_mean_and_stderr([per_cat[c] for c in cats])
    return {"per_category": per_cat, "num_values": counts, "averages": averages}


# =============================================================================================
# Pixel-level localisation metrics (Table 2 and the MVTec AD region metric).

# Up to this many pixels, pixel AUROC is exact (sklearn on float32 scores: about 20 bytes per
# pixel at the peak, 1 GB at this bound); above, a 2**16-bin histogram between the smallest and
# largest score (memory independent of the pixel count; pairs falling into one bin count as
# ties, an error well below 0.1 AUROC points for continuous scores).
MAX_EXACT_PIXELS = 50_000_000


def _pixels(maps, masks) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(maps, dtype=np.float32)
    m = np.asarray(masks).astype(bool)
    if s.shape != m.shape:
        raise ValueError(f"anomaly maps {s.shape} and masks {m.shape} differ in shape")
    if not np.all(np.isfinite(s)):
        raise ValueError("anomaly maps contain NaN or infinite values")
    if not m.any() or m.all():
        raise ValueError("pixel metrics need both anomalous (mask) and normal pixels")
    return s, m


def pixel_auroc(maps, masks, max_exact_pixels: int = MAX_EXACT_PIXELS, bins: int = 1 << 16
                ) -> float:
    """AUROC of every pixel's score against its ground-truth label, all images pooled (Table 2).

    ``maps`` and ``masks`` are ``[N, H, W]``; normal test images take part with all-zero masks.
    Exact up to ``max_exact_pixels``, binned above (see ``MAX_EXACT_PIXELS``).
    """
    s, m = _pixels(maps, masks)
    if s.size <= max_exact_pixels:
        return float(roc_auc_score(m.reshape(-1), s.reshape(-1)))
    lo, hi = float(s.min()), float(s.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    pos = np.zeros(bins, np.float64)
    neg = np.zeros(bins, np.float64)
    for i in range(len(s)):  # one image at a time keeps the temporaries small
        idx = np.clip(np.searchsorted(edges, s[i].reshape(-1), side="right") - 1, 0, bins - 1)
        pos += np.bincount(idx, weights=m[i].reshape(-1), minlength=bins)
        neg += np.bincount(idx, weights=~m[i].reshape(-1), minlength=bins)
    neg_below = np.cumsum(neg) - neg
    return float(np.sum(pos * (neg_below + 0.5 * neg)) / (pos.sum() * neg.sum()))


def aupro(maps, masks, max_fpr: float = 0.3) -> float:
    """Area under the per-region-overlap curve up to ``max_fpr``, divided by ``max_fpr``.

    The MVTec AD standard (Bergmann et al., IJCV 2021): at each threshold, PRO is the mean over
    all ground-truth regions (8-connected components of each mask, ``cv2.connectedComponents``)
    of the fraction of the region's pixels above the threshold, and FPR the fraction of all
    normal pixels above it; the curve is integrated (trapezoids, interpolated at ``max_fpr``)
    from FPR 0 to ``max_fpr``. Exact; memory about 40 bytes per pixel.
    """
    import cv2

    if not 0 < max_fpr <= 1:
        raise ValueError(f"max_fpr must be in (0, 1], got {max_fpr}")
    s, m = _pixels(maps, masks)
    pro_weight = np.zeros(s.shape, np.float64)
    regions = 0
    for i in range(len(m)):
        if not m[i].any():
            continue
        count, labels = cv2.connectedComponents(m[i].astype(np.uint8), connectivity=8)
        sizes = np.bincount(labels.reshape(-1), minlength=count).astype(np.float64)
        inside = labels > 0
        pro_weight[i][inside] = 1.0 / sizes[labels[inside]]
        regions += count - 1
    pro_weight /= regions
    fp_weight = (~m).astype(np.float64) / float((~m).sum())
    order = np.argsort(-s.reshape(-1), kind="stable")
    ranked = s.reshape(-1)[order]
    fpr = np.cumsum(fp_weight.reshape(-1)[order])
    pro = np.cumsum(pro_weight.reshape(-1)[order])
    last = np.r_[ranked[1:] != ranked[:-1], True]  # one point per distinct threshold
    fpr = np.r_[0.0, fpr[last]]
    pro = np.r_[0.0, pro[last]]
    end = int(np.searchsorted(fpr, max_fpr, side="right"))  # fpr[end - 1] <= max_fpr
    x, y = fpr[:end], pro[:end]
    if end < len(fpr) and x[-1] < max_fpr:
        t = (max_fpr - fpr[end - 1]) / (fpr[end] - fpr[end - 1])
        x = np.r_[x, max_fpr]
        y = np.r_[y, pro[end - 1] + t * (pro[end] - pro[end - 1])]
    area = float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))
    return area / max_fpr
