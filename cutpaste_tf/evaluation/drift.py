"""Capture drift: is a set of images scored or captured unlike the training images?

A drifting line (a lamp ages, a camera moves) makes normal parts score higher, and the Gaussian
density then reads the drift as a defect. Two signals say so without labels:

- **Image statistics** of the model's input (:func:`image_statistics`: mean grey, contrast, the
  red and blue casts), per image. A set's median has drifted from the training images' median
  when the difference is both large (beyond a floor: 4 % of the mean grey, 10 % of the
  contrast, 2.5 grey levels of a cast) and significant (:data:`Z_BOUND` standard errors;
  :func:`compare_statistics`).
- **Scores** (:func:`compare_scores`): normal images the model never trained on (the held-out
  ones, or out-of-fold scores) are the reference. A set scores *systematically above* it when a
  rank test says so (one-sided Mann-Whitney ``z`` above :data:`Z_BOUND`) and its median sits at
  least :data:`SCORE_SIGMA_BOUND` reference spreads above the reference median; its share above
  the threshold is too high when it exceeds the expected share by three binomial standard
  errors and is at least twice it.

The bounds are stated here once; the evaluation's warning, ``launch.predict``'s warning and a
TF Serving client (:func:`check`, with the reference from the SavedModel's ``cutpaste.json``)
all use them. The statistics are computed in TensorFlow so that the SavedModel returns them
(output ``image_stats``) and a client can monitor them.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from cutpaste_tf.data import eval_dataset
from cutpaste_tf.ops import shifts

STATISTICS = shifts.STATISTICS
image_statistics = shifts.image_statistics
LABELS = {"mean_grey": "mean grey", "contrast": "contrast", "red_cast": "red cast",
          "blue_cast": "blue cast"}
# A set's median statistic differs from the training images' when the difference is beyond the
# statistic's floor (relative to the training median for mean grey and contrast: 4 % and 10 %;
# absolute on the [0, 1] scale for the casts: 0.01 is 2.5 levels of 255) and significant: more
# than Z_BOUND standard errors of a difference of two medians.
FLOORS = {"mean_grey": 0.04, "contrast": 0.10, "red_cast": 0.01, "blue_cast": 0.01}
RELATIVE_FLOOR = ("mean_grey", "contrast")
Z_BOUND = 3.0  # a significant difference (medians) or "the set scores above" (Mann-Whitney)
SCORE_SIGMA_BOUND = 1.0  # and its median at least this many reference spreads above
MIN_IMAGES = 5  # fewer images say nothing
QUANTILES = (0.5, 0.9, 0.95, 0.99)  # of the normal reference scores, for a monitoring dashboard


def file_statistics(paths: Sequence[str], image_size: Sequence[int],
                    batch_size: int = 32) -> np.ndarray:
    """:func:`image_statistics` of image files as the model sees them: [N, 4]."""
    if not paths:
        return np.zeros([0, len(STATISTICS)], np.float32)
    return np.concatenate([image_statistics(x).numpy()
                           for x in eval_dataset(paths, image_size, batch_size)])


def robust_sigma(values: Sequence[float]) -> float:
    """The spread of ``values``: the interquartile range / 1.349 (the standard deviation of a
    normal distribution), or the standard deviation where the quartiles coincide."""
    x = np.asarray(values, np.float64)
    if x.size < 2:
        return 0.0
    q1, q3 = np.percentile(x, [25, 75])
    return float((q3 - q1) / 1.349) if q3 > q1 else float(x.std())


def reference(train_stats: np.ndarray, normal_scores: Sequence[float],
              threshold: Optional[float] = None, quantile: Optional[float] = None) -> dict:
    """What later sets are compared with (stored in ``drift_reference.json`` and in the
    SavedModel's ``cutpaste.json``): per statistic the training images' median and spread; the
    normal reference scores (held-out or out-of-fold, sorted) with their median, spread and
    :data:`QUANTILES`; the threshold and the share of normal images expected above it
    (:func:`with_threshold`)."""
    stats = np.asarray(train_stats, np.float64).reshape(-1, len(STATISTICS))
    scores = np.sort(np.asarray(normal_scores, np.float64))
    out = {"statistics": {name: {"median": float(np.median(stats[:, i])),
                                 "sigma": robust_sigma(stats[:, i]),
                                 "num_images": int(len(stats))}
                          for i, name in enumerate(STATISTICS)} if len(stats) else {},
           "scores": {"values": [float(v) for v in scores],
                      "median": float(np.median(scores)) if scores.size else None,
                      "sigma": robust_sigma(scores),
                      "quantiles": {str(q): float(np.quantile(scores, q)) for q in QUANTILES}
                      if scores.size else {}}}
    return with_threshold(out, threshold, quantile)


def with_threshold(ref: dict, threshold: Optional[float],
                   quantile: Optional[float] = None) -> dict:
    """``ref`` for decisions at ``threshold``: the share of normal images expected above it is
    ``1 - quantile`` for a quantile threshold, else the share of the reference scores above
    it."""
    out = {**ref, "threshold": None, "expected_share_above": None}
    if threshold is None or not math.isfinite(threshold):
        return out
    scores = np.asarray(ref["scores"]["values"], np.float64)
    out["threshold"] = float(threshold)
    out["expected_share_above"] = (float(1 - quantile) if quantile is not None else
                                   float(np.mean(scores > threshold)) if scores.size else None)
    return out


def compare_statistics(stats: np.ndarray, ref: dict) -> dict:
    """Per statistic: the set's median, the reference median, their difference in spreads of
    the training images (``sigma``), its significance (``z``: in standard errors of a
    difference of medians, ``1.2533 sigma sqrt(1/n + 1/n_ref)``) and whether it drifted (beyond
    the floor and :data:`Z_BOUND`; see :data:`FLOORS`)."""
    stats = np.asarray(stats, np.float64).reshape(-1, len(STATISTICS))
    out = {}
    for i, name in enumerate(STATISTICS):
        base = ref.get("statistics", {}).get(name)
        if base is None or len(stats) == 0:
            continue
        median = float(np.median(stats[:, i]))
        diff = median - base["median"]
        floor = FLOORS[name] * (abs(base["median"]) if name in RELATIVE_FLOOR else 1.0)
        spread = max(base["sigma"], 1e-6)
        se = 1.2533 * spread * math.sqrt(1 / len(stats) + 1 / max(base["num_images"], 1))
        out[name] = {"median": median, "reference_median": base["median"],
                     "sigma": float(diff / spread), "z": float(diff / se),
                     "drifted": bool(len(stats) >= MIN_IMAGES and abs(diff) > floor
                                     and abs(diff / se) > Z_BOUND)}
    return out


def compare_scores(scores: Sequence[float], ref: dict) -> dict:
    """The set's scores against the reference normal scores: the one-sided Mann-Whitney
    probability that a set image scores above a reference one (0.5: alike) and its ``z``, the
    median shift in reference spreads, the share above the threshold against the expected share,
    and whether the set scores systematically above or has too many above the threshold."""
    s = np.asarray(scores, np.float64)
    r = np.asarray(ref["scores"]["values"], np.float64)
    out: dict = {"num_images": int(s.size), "median": float(np.median(s)) if s.size else None,
                 "reference_median": ref["scores"]["median"]}
    if s.size and r.size:
        n1, n2 = s.size, r.size
        greater = (s[:, None] > r[None, :]).sum() + 0.5 * (s[:, None] == r[None, :]).sum()
        p = float(greater / (n1 * n2))
        se = math.sqrt((n1 + n2 + 1) / (12.0 * n1 * n2))
        sigma = ref["scores"]["sigma"] or float(np.std(r)) or 1.0
        shift = (out["median"] - ref["scores"]["median"]) / sigma
        out.update(p_above=p, z=(p - 0.5) / se, median_shift_sigma=float(shift))
        out["scores_above"] = bool(s.size >= MIN_IMAGES and out["z"] > Z_BOUND
                                   and shift >= SCORE_SIGMA_BOUND)
    threshold, expected = ref.get("threshold"), ref.get("expected_share_above")
    if threshold is not None and s.size:
        share = float(np.mean(s > threshold))
        out.update(share_above=share, expected_share_above=expected)
        if expected is not None:
            bound = expected + 3 * math.sqrt(max(expected * (1 - expected), 1e-12) / s.size)
            out["share_bound"] = float(max(bound, 2 * expected))
            out["too_many_above"] = bool(s.size >= MIN_IMAGES and share > out["share_bound"])
    return out


def check(stats: Optional[np.ndarray], scores: Optional[Sequence[float]], ref: dict) -> dict:
    """Both comparisons of a set of images (either may be None) and ``drifted``: whether any
    signal is beyond its bound."""
    out: dict = {}
    if stats is not None:
        out["statistics"] = compare_statistics(stats, ref)
    if scores is not None:
        out["scores"] = compare_scores(scores, ref)
    out["drifted"] = bool(any(v["drifted"] for v in out.get("statistics", {}).values())
                          or out.get("scores", {}).get("scores_above")
                          or out.get("scores", {}).get("too_many_above"))
    return out


def _levels(name: str, value: float) -> str:
    """A statistic for people: grey levels of 255 for mean grey and contrast, signed for casts."""
    return f"{255 * value:.0f}" if name in ("mean_grey", "contrast") else f"{255 * value:+.1f}"


def describe(result: dict, what: str = "these images",
             reference_what: str = "held-out training normals") -> str:
    """One line saying what drifted (empty when nothing did), e.g. ``the test normals score
    above held-out training normals (median 44.5 vs 35.1): the test images differ from the
    training images (mean grey 170 vs 184); AUROC may measure the drift, not the defects``."""
    if not result.get("drifted"):
        return ""
    parts = []
    scores = result.get("scores", {})
    if scores.get("scores_above"):
        parts.append(f"{what} score above {reference_what} (median {scores['median']:.4g} vs "
                     f"{scores['reference_median']:.4g}, {scores['median_shift_sigma']:+.1f} "
                     "spreads)")
    if scores.get("too_many_above"):
        parts.append(f"{100 * scores['share_above']:.0f}% of {what} are above the threshold "
                     f"(expected {100 * scores['expected_share_above']:.0f}%, bound "
                     f"{100 * scores['share_bound']:.0f}%)")
    moved = [f"{LABELS[n]} {_levels(n, v['median'])} vs {_levels(n, v['reference_median'])}"
             for n, v in result.get("statistics", {}).items() if v["drifted"]]
    if moved:
        parts.append(f"{what} differ from the training images ({', '.join(moved)})")
    return "; ".join(parts)
