"""The ensemble of several runs of one setting (Table 1's "ensemble"): each model's test scores
standardised with the mean and std of its own normal training images' scores, averaged over the
models, then AUROC."""

from __future__ import annotations

import math
import os
from typing import Mapping, Sequence

import numpy as np

from cutpaste_tf import files, rundir
from cutpaste_tf.evaluation import evaluate, metrics


class EnsembleUnavailable(ValueError):
    """An ensemble cannot be formed (a member without training-score statistics, ...)."""


def ensemble_scores(members: Sequence[Mapping[str, float]],
                    stats: Sequence[tuple[float, float]]) -> dict[str, float]:
    """Per image path, the mean over ``members`` of ``(score - mean) / std``, each member
    standardised with ``stats`` (the mean and std of its own normal training images' scores)."""
    if not members or len(members) != len(stats):
        raise ValueError(f"{len(members)} score sets but {len(stats)} statistics")
    paths = set(members[0])
    for i, member in enumerate(members[1:], 1):
        if set(member) != paths:
            odd = sorted(paths.symmetric_difference(member))
            raise EnsembleUnavailable(f"member {i} scored other images than member 0, "
                                      f"e.g. {odd[:2]}")
    for i, (_, std) in enumerate(stats):
        if not (math.isfinite(std) and std > 0):
            raise EnsembleUnavailable(f"member {i}: training-score std {std} is not positive")
    return {p: float(np.mean([(m[p] - mu) / sd for m, (mu, sd) in zip(members, stats)]))
            for p in sorted(paths)}


def read_scores(path: str) -> tuple[dict[str, float], dict[str, int]]:
    """A category's scores.csv (:func:`cutpaste_tf.evaluation.evaluate.write_scores`) -> scores and labels
    by image path."""
    paths, labels, scores = evaluate.read_scores(path)
    return (dict(zip(paths, scores.tolist())), dict(zip(paths, labels.tolist())))


def ensemble_auroc(model_dirs: Sequence[str], category: str) -> float:
    """Image AUROC of the standardised-and-averaged scores of several runs of one category."""
    members, stats, labels = [], [], {}
    for model_dir in model_dirs:
        out = os.path.join(model_dir, category)
        record = files.read_json(os.path.join(out, rundir.RESULTS_FILE)).get("train_score_stats")
        if record is None:
            raise EnsembleUnavailable(f"{out}/results.json has no train_score_stats (a patch "
                                      "model, or written by an older version)")
        scores, member_labels = read_scores(os.path.join(out, rundir.SCORES_FILE))
        if labels and member_labels != labels:
            raise EnsembleUnavailable(f"{out}/scores.csv labels differ from the other runs'")
        labels = member_labels
        members.append(scores)
        stats.append((float(record["mean"]), float(record["std"])))
    combined = ensemble_scores(members, stats)
    paths = sorted(combined)
    return metrics.auroc([labels[p] for p in paths], [combined[p] for p in paths])
