"""Whether the proxy task learned: the training curve, the check at a quarter of the steps, the
warning a run that does not learn prints, and the marks in results tables."""

import numpy as np
import pytest
import tensorflow as tf

from cutpaste_tf.config import TrainConfig
from cutpaste_tf.models import build_cutpaste_model
from cutpaste_tf.reporting import experiment_tables, summary, tables
from cutpaste_tf.training import learning, train


def _rows(accuracies, every=10, classes=3):
    return [{"step": every * (i + 1), "accuracy": a, "accuracy_per_class": [a] * classes}
            for i, a in enumerate(accuracies)]


def test_check_waits_for_a_quarter_of_the_steps():
    rows = _rows([0.34, 0.35])  # steps 10, 20 of 100: before the quarter mark
    assert learning.check(rows, 100, 3) is None
    assert learning.check(_rows([0.34, 0.35, 0.9]), 100, 3)["quarter_step"] == 30


def test_check_marks_a_run_near_chance_and_passes_one_above_it():
    near = learning.check(_rows([0.34, 0.36, 0.37, 0.38]), 100, 3)
    assert not near["learned"] and near["chance"] == pytest.approx(1 / 3)
    assert near["quarter_accuracy"] == 0.37 and near["final_accuracy"] == 0.38
    assert learning.check(_rows([0.4, 0.5, 0.6, 0.9]), 100, 3)["learned"]
    # Binary: chance is 0.5; 0.54 is within five points of it.
    assert not learning.check(_rows([0.52, 0.54], classes=2), 40, 2)["learned"]
    assert learning.check(_rows([0.56, 0.6], classes=2), 40, 2)["learned"]


def test_figures_name_each_step_once():
    at_quarter = learning.check(_rows([0.34, 0.35, 0.36]), 100, 3)  # the check during training
    assert learning.figures(at_quarter) == "training accuracy 0.360 at step 30 (chance 0.333)"
    at_end = learning.figures(learning.check(_rows([0.34, 0.35, 0.36, 0.37]), 40, 3))
    assert at_end == "training accuracy 0.340 at step 10, 0.370 at step 40 (chance 0.333)"


def test_end_note_says_why_without_the_warning_above():
    # A rerun skips the training and so its warning: the last line must carry the figures.
    stuck = learning.check(_rows([0.34, 0.35, 0.36, 0.37]), 40, 3)
    assert learning.end_note(stuck) == (
        "; PROXY TASK NOT LEARNED: training accuracy 0.340 at step 10, 0.370 at step 40 "
        "(chance 0.333), so this AUROC does not measure the method (causes and flags to try: "
        "docs/learning.md)")
    assert "above" not in learning.end_note(stuck)
    late = learning.check(_rows([0.34, 0.36, 0.5, 0.9]), 40, 3)
    assert learning.end_note(late).startswith("; PROXY TASK LEARNED LATE: training accuracy")
    assert learning.end_note(learning.check(_rows([0.4, 0.5, 0.6, 0.9]), 40, 3)) == ""
    assert learning.end_note(None) == ""  # too short to judge


def test_check_marks_a_run_that_falls_back_to_chance_by_the_end():
    assert not learning.check(_rows([0.5, 0.6, 0.7, 0.34]), 40, 3)["learned"]


def test_status_tells_a_run_that_learned_late_from_one_that_did_not():
    assert learning.status(learning.check(_rows([0.4, 0.5, 0.6, 0.9]), 40, 3)) == "learned"
    late = learning.check(_rows([0.34, 0.36, 0.5, 0.9]), 40, 3)
    assert not late["learned"] and learning.status(late) == "learned late"
    never = learning.check(_rows([0.34, 0.36, 0.37, 0.38]), 40, 3)
    assert learning.status(never) == "not learned"
    fell_back = learning.check(_rows([0.5, 0.6, 0.7, 0.34]), 40, 3)
    assert learning.status(fell_back) == "not learned"
    binary_late = learning.check(_rows([0.5, 0.52, 0.59, 0.87], classes=2), 40, 2)
    assert learning.status(binary_late) == "learned late"


def _config(**kw):
    return TrainConfig(**{**dict(task="cutpaste", image_size=(32, 32), batch_size=8, epochs=1,
                                 steps_per_epoch=8, log_every=2, checkpoint_every=4), **kw})


def _model(config):
    tf.keras.utils.set_random_seed(0)
    return build_cutpaste_model(config.num_classes, head_widths=(8,),
                                input_shape=(*config.image_size, 3))


def _batches(config, learnable):
    """Label 1 views are bright and label 0 dark (learnable), or every view of a batch is the
    same image (nothing to learn: all get one prediction, accuracy exactly chance)."""
    rng = np.random.default_rng(0)
    half = config.batch_size // 2
    while True:
        views = rng.random((config.batch_size, *config.image_size, 3), dtype=np.float32) * 0.5
        if learnable:
            views[half:] += 0.5
        else:
            views[:] = views[0]
        yield tf.constant(views), tf.constant(np.repeat([0, 1], half).astype(np.int32))


def test_training_writes_the_curve_per_class_and_warns_when_it_does_not_learn(tmp_path, capsys):
    config = _config(learning_rate=1e-9)  # a run made not to learn: nothing moves
    train.train(_model(config), _batches(config, learnable=False), config, str(tmp_path),
                verbose=False)
    rows = learning.read_curve(str(tmp_path))
    assert [r["step"] for r in rows] == [2, 4, 6, 8]
    assert all(len(r["accuracy_per_class"]) == 2 for r in rows)
    # The overall accuracy is the mean of the balanced classes'.
    assert all(r["accuracy"] == pytest.approx(np.mean(r["accuracy_per_class"])) for r in rows)
    err = capsys.readouterr().err
    assert "not learning" in err and "step 2" in err
    assert "configs/cpu_choices.flags" in err  # the short-run choices, for the paper's config
    verdict = learning.verdict(str(tmp_path), config.total_steps, config.num_classes)
    assert verdict is not None and not verdict["learned"]


def test_a_run_that_learns_is_not_warned_about(tmp_path, capsys):
    config = _config(learning_rate=0.05, steps_per_epoch=16, log_every=4, checkpoint_every=8)
    train.train(_model(config), _batches(config, learnable=True), config, str(tmp_path),
                verbose=False)
    assert "not learning" not in capsys.readouterr().err
    assert learning.verdict(str(tmp_path), config.total_steps, config.num_classes)["learned"]


def test_a_run_that_learns_after_the_quarter_mark_is_warned_then_told_it_learned_late(
        tmp_path, capsys):
    config = _config(learning_rate=0.05, steps_per_epoch=16, log_every=4, checkpoint_every=8)
    chance_first, learnable = _batches(config, False), _batches(config, True)
    batches = (next(chance_first) if i < 4 else next(learnable) for i in range(16))
    train.train(_model(config), batches, config, str(tmp_path), verbose=False)
    err = capsys.readouterr().err
    verdict = learning.verdict(str(tmp_path), config.total_steps, config.num_classes)
    assert learning.status(verdict) == "learned late", verdict
    assert "not learning" in err and "learned late" in err and "step 16" in err


def test_resume_keeps_the_curve_up_to_the_checkpoint(tmp_path, capsys):
    config = _config(learning_rate=1e-9)
    train.train(_model(config), _batches(config, False), config, str(tmp_path), verbose=False)
    longer = _config(learning_rate=1e-9, steps_per_epoch=12)
    train.train(_model(longer), _batches(longer, False), longer, str(tmp_path), verbose=False)
    steps = [r["step"] for r in learning.read_curve(str(tmp_path))]
    assert steps == [2, 4, 6, 8, 10, 12]


def _result(name, learned):
    verdict = {"learned": learned, "chance": 0.5, "margin": 0.05, "quarter_step": 40,
               "quarter_accuracy": 0.51 if not learned else 0.9, "final_step": 160,
               "final_accuracy": 0.52 if not learned else 0.95, "final_accuracy_per_class": []}
    return {"category": name, "kind": "texture", "auroc": 0.7, "learning": verdict}


def test_results_tables_mark_runs_that_did_not_learn(tmp_path):
    from cutpaste_tf import files
    for name, learned in (("fabric", False), ("washer", True)):
        files.write_json(str(tmp_path / name / "results.json"), _result(name, learned))
    md = summary.summarize_run(str(tmp_path), "cutpaste")
    assert "| fabric ⚠ |" in md and "| washer |" in md
    assert "Proxy task not learned" in md and "0.510 at step 40" in md
    assert "- fabric: not learned, training accuracy" in md
    assert files.read_json(str(tmp_path / "results.json"))["not_learned"] == ["fabric"]
    assert learning.not_learned({"a": _result("a", True), "b": _result("b", False)}) == ["b"]
    assert "⚠" not in tables.markdown_table({"washer": 0.9}, {"washer": "object"}, "cutpaste")


def test_experiment_tables_mark_runs_that_did_not_learn():
    setting = {"task": "cutpaste", "flag": None, "value": None, "name": "cutpaste",
               "runs": {"0": "s0"}, "kinds": {"fabric": "texture"},
               "per_category": {"fabric": {"mean": 0.7, "se": None, "n": 1}},
               "averages": {}, "ensemble": None,
               "not_learned": [{"seed": 0, "category": "fabric", **_result("f", False)["learning"]}]}
    md = experiment_tables.markdown({"settings": [{**setting, "paper": {
        "per_category": {}, "averages": {}, "ensemble": {}, "ensemble_averages": {}}}],
        "kinds": {"fabric": "texture"}, "seeds": [0], "sweep": None})
    assert "70.0 ⚠" in md and "seed 0, fabric: proxy task not learned" in md
    late = {**setting["not_learned"][0], "final_accuracy": 0.9}
    md = experiment_tables.markdown({"settings": [{**setting, "not_learned": [late], "paper": {
        "per_category": {}, "averages": {}, "ensemble": {}, "ensemble_averages": {}}}],
        "kinds": {"fabric": "texture"}, "seeds": [0], "sweep": None})
    assert "seed 0, fabric: proxy task learned late (training accuracy 0.510 at step 40, " \
        "0.900 at step 160" in md
