"""The drift stress test: how a trained run holds up when the capture shifts, without labels.

Normal images the run did not train on (its held-out ones; without them, each training image
scored by a density fitted on the other folds, as the out-of-fold threshold is set) are shifted
by each nuisance of :mod:`cutpaste_tf.ops.shifts` (brightness, contrast, gamma, a colour cast,
translation, rotation, blur, noise, JPEG) and rounded to 8 bits as a capture would be. For each
shift the test reports:

- ``false_alarm_rate``: the share of shifted normals above the run's threshold (what the drift
  would flag on the line);
- ``auroc``: shifted normals against *unshifted* anomalies (the worst case a drifted test set
  makes: darker normals and defects as captured), the anomalies being labelled validation
  defects where the dataset has them, else synthetic shapes pasted on the clean normals
  (:mod:`cutpaste_tf.ops.synthetic`);
- ``median_shift_sigma``: how far the median normal score moves, in robust spreads of the
  clean normal scores.

Nothing here reads a test image or a test label.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Sequence

import numpy as np

import tensorflow as tf

from cutpaste_tf.evaluation import drift, metrics
from cutpaste_tf.ops import shifts, synthetic

ScoreFn = Callable[[np.ndarray], np.ndarray]  # 8-bit-rounded images [N, H, W, 3] -> scores
# Synthetic anomalies when no labelled defects are given: the four shapes in random colours
# (natural-image fills need other categories' images, which a single category lacks).
SYNTHETIC_KINDS = tuple(f"{s}_color" for s in synthetic.SYNTHETIC_SHAPES)
MIN_NORMALS = 2  # the stress test's fewest normal images (a spread needs two)
TARGET_FALSE_ALARMS = 0.10  # a ±10 % brightness or contrast drift flags at most this share


@dataclasses.dataclass
class Normals:
    """The normal images of the test and how each is scored: ``score_fns[groups[i]]`` scores
    image ``i`` (one group for held-out images; one per fold otherwise)."""

    images: np.ndarray
    groups: np.ndarray
    score_fns: Sequence[ScoreFn]
    source: str  # "held-out" or "out-of-fold"

    def score(self, images: np.ndarray, groups: Optional[np.ndarray] = None) -> np.ndarray:
        """Scores of ``images`` (8-bit rounded first), each by its group's function: ``groups``,
        or, when not given, the normals' own groups for (shifted) normals and the first
        function for other images."""
        if groups is None:
            same = len(images) == len(self.groups)
            groups = self.groups if same else np.zeros(len(images), np.int64)
        x = np.round(np.clip(images, 0.0, 1.0) * 255.0) / 255.0
        out = np.empty(len(x), np.float64)
        for g in np.unique(groups):
            keep = groups == g
            out[keep] = self.score_fns[int(g)](x[keep].astype(np.float32))
        return out


def spread_indices(count: int, limit: int) -> np.ndarray:
    """At most ``limit`` of ``range(count)``, evenly spaced (all of them when fewer)."""
    if count <= limit:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, limit).round().astype(int))


def fold_groups(count: int, folds: int, seed: int) -> np.ndarray:
    """The fold of each of ``count`` images, as
    :func:`cutpaste_tf.evaluation.threshold.out_of_fold_scores` assigns them."""
    order = np.random.default_rng(seed).permutation(count)
    groups = np.empty(count, np.int64)
    for k, part in enumerate(np.array_split(order, min(folds, count))):
        groups[part] = k
    return groups


def synthetic_anomalies(normal: np.ndarray, seed: int = 0, batch_size: int = 32) -> np.ndarray:
    """One anomaly of each of :data:`SYNTHETIC_KINDS` on every normal image [N, H, W, 3]
    (seeded by ``seed`` and the batch, so every kind puts its shape at the same place)."""
    out = []
    digits = tf.constant(synthetic.digit_templates(synthetic.SyntheticConfig().digit_size))
    for kind in SYNTHETIC_KINDS:
        shape = kind.split("_")[0]
        for start in range(0, len(normal), batch_size):
            batch = tf.constant(normal[start:start + batch_size], tf.float32)
            out.append(synthetic.synthesize(batch, tf.constant([seed, start], tf.int64), shape,
                                            "color", digits).numpy())
    return np.concatenate(out)


def stress_test(normals: Normals, anomalies: np.ndarray, threshold: float,
                shift_list: Sequence[shifts.Shift] = shifts.STRESS_SHIFTS, seed: int = 0,
                batch_size: int = 32, anomaly_groups: Optional[np.ndarray] = None) -> dict:
    """The figures of every shift (and of the clean images, ``shift`` "none"); see the module's
    docstring. ``anomalies`` are scored unshifted, by the function of ``anomaly_groups``
    (default: the first)."""
    if len(normals.images) < MIN_NORMALS or len(anomalies) < 1:
        raise ValueError(f"the stress test needs at least {MIN_NORMALS} normal images and 1 "
                         f"anomaly, got {len(normals.images)} and {len(anomalies)}")
    groups = np.zeros(len(anomalies), np.int64) if anomaly_groups is None else anomaly_groups
    anomaly_scores = normals.score(anomalies, groups)
    clean = normals.score(normals.images)
    spread = drift.robust_sigma(clean) or float(np.std(clean)) or 1.0
    rows = [_row("none", None, None, clean, clean, anomaly_scores, threshold, spread)]
    for i, shift in enumerate(shift_list):
        shifted = np.concatenate([
            shifts.apply_shift(normals.images[s:s + batch_size], shift, (seed, i * 100003 + s))
            .numpy() for s in range(0, len(normals.images), batch_size)])
        rows.append(_row(shift.name, shift.kind, shift.amount, normals.score(shifted), clean,
                         anomaly_scores, threshold, spread))
    return {"rows": rows, "summary": summarize(rows, shift_list),
            "num_normal": int(len(clean)), "num_anomalies": int(len(anomaly_scores)),
            "normals": normals.source, "threshold": float(threshold), "seed": seed}


def _row(name, kind, amount, scores, clean, anomaly_scores, threshold, spread) -> dict:
    labels = np.r_[np.zeros(len(scores)), np.ones(len(anomaly_scores))]
    return {"shift": name, "kind": kind, "amount": amount,
            "false_alarm_rate": float(np.mean(scores > threshold)),
            "auroc": metrics.auroc(labels, np.r_[scores, anomaly_scores]),
            "median_score": float(np.median(scores)),
            "median_shift_sigma": float((np.median(scores) - np.median(clean)) / spread)}


def summarize(rows: Sequence[dict], shift_list: Sequence[shifts.Shift]) -> dict:
    """The headline figures: the clean false-alarm rate and AUROC; the worst false-alarm rate
    under a ±10 % brightness or contrast shift (against :data:`TARGET_FALSE_ALARMS`) and the
    shift that gives it; the worst AUROC over all shifts and its drop from the clean one."""
    clean, shifted = rows[0], rows[1:]
    by_name = {s.name: s for s in shift_list}
    mild = [r for r in shifted if by_name[r["shift"]].photometric_10]
    out = {"clean_false_alarm_rate": clean["false_alarm_rate"], "clean_auroc": clean["auroc"]}
    if mild:
        worst = max(mild, key=lambda r: r["false_alarm_rate"])
        out.update(worst_false_alarm_10=worst["false_alarm_rate"],
                   worst_false_alarm_10_shift=worst["shift"],
                   meets_false_alarm_target=worst["false_alarm_rate"] <= TARGET_FALSE_ALARMS)
    if shifted:
        low = min(shifted, key=lambda r: r["auroc"])
        out.update(worst_auroc=low["auroc"], worst_auroc_shift=low["shift"],
                   worst_auroc_drop=clean["auroc"] - low["auroc"])
    return out
