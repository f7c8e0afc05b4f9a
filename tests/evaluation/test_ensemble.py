"""cutpaste_tf.evaluation.ensemble: the ensemble of a setting's seeds, each model standardised with
its own training scores."""

import json

import pytest

from cutpaste_tf.evaluation import ensemble

# Four test images: a, b normal; c, d anomalous. Model 1 ranks them badly on a large scale,
# model 2 perfectly on a small one. Standardised with each model's own training-score mean and
# std, model 2's ranking wins; a plain average of raw scores would follow model 1.
MEMBER_1 = {"a": 1000.0, "b": 3000.0, "c": 2000.0, "d": 2500.0}  # train scores: mean 1000, std 1000
MEMBER_2 = {"a": 0.0, "b": -3.0, "c": 3.0, "d": 2.5}             # train scores: mean 0, std 1
LABELS = {"a": 0, "b": 0, "c": 1, "d": 1}


def test_ensemble_standardises_each_model_with_its_own_training_scores():
    combined = ensemble.ensemble_scores([MEMBER_1, MEMBER_2], [(1000.0, 1000.0), (0.0, 1.0)])
    assert combined == pytest.approx({"a": 0.0, "b": -0.5, "c": 2.0, "d": 2.0})
    from cutpaste_tf.evaluation import metrics
    paths = sorted(LABELS)
    labels = [LABELS[p] for p in paths]
    assert metrics.auroc(labels, [combined[p] for p in paths]) == 1.0
    raw = [(MEMBER_1[p] + MEMBER_2[p]) / 2 for p in paths]
    assert metrics.auroc(labels, raw) == 0.5
    assert metrics.auroc(labels, [MEMBER_1[p] for p in paths]) == 0.5


def _member(model_dir, scores, stats):
    out = model_dir / "washer"
    out.mkdir(parents=True)
    rows = ["path,label,defect,score"] + [f"{p},{LABELS[p]},{'good' if LABELS[p] == 0 else 'x'},"
                                          f"{s}" for p, s in scores.items()]
    (out / "scores.csv").write_text("\n".join(rows) + "\n")
    record = {"auroc": 0.5, "kind": "object", "category": "washer"}
    if stats:
        record["train_score_stats"] = {"mean": stats[0], "std": stats[1]}
    (out / "results.json").write_text(json.dumps(record))
    return str(model_dir)


def test_ensemble_auroc_reads_each_runs_scores_and_statistics(tmp_path):
    dirs = [_member(tmp_path / "s0", MEMBER_1, (1000.0, 1000.0)),
            _member(tmp_path / "s1", MEMBER_2, (0.0, 1.0))]
    assert ensemble.ensemble_auroc(dirs, "washer") == 1.0
    old = _member(tmp_path / "old", MEMBER_2, None)
    with pytest.raises(ensemble.EnsembleUnavailable, match="no train_score_stats"):
        ensemble.ensemble_auroc([dirs[0], old], "washer")


def test_ensemble_refuses_members_that_scored_other_images_or_have_no_spread():
    with pytest.raises(ensemble.EnsembleUnavailable, match="other images"):
        ensemble.ensemble_scores([MEMBER_1, {"a": 1.0}], [(0.0, 1.0), (0.0, 1.0)])
    with pytest.raises(ensemble.EnsembleUnavailable, match="not positive"):
        ensemble.ensemble_scores([MEMBER_1, MEMBER_2], [(0.0, 1.0), (0.0, 0.0)])
