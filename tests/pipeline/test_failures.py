"""A failed category is recorded with its stage, error and message, cleared by its next
success, and listed in the run's results.json and results.md."""

import json

import pytest
import tensorflow as tf

from cutpaste_tf.pipeline import failures
from cutpaste_tf.reporting import summary
from cutpaste_tf.training import train


def _fail(stage: str, error: Exception):
    def run():
        with failures.stage("training"), failures.stage(stage):  # the inner stage names it
            raise error
    return run


def test_attempt_records_the_stage_type_and_first_line_and_removes_stale_results(tmp_path):
    (tmp_path / "screw").mkdir()
    (tmp_path / "screw" / "results.json").write_text('{"category": "screw", "auroc": 0.9}')
    error = failures.attempt(_fail("evaluation", OSError("disk full\nsecond line")),
                             str(tmp_path), "screw")
    assert isinstance(error, OSError)
    record = json.loads((tmp_path / "screw" / "failed.json").read_text())
    assert {k: record[k] for k in ("category", "stage", "error", "message")} == {
        "category": "screw", "stage": "evaluation", "error": "OSError", "message": "disk full"}
    assert "Traceback" in record["traceback"] and "second line" in record["traceback"]
    assert not (tmp_path / "screw" / "results.json").exists()  # no longer describes the files
    assert failures.collect(str(tmp_path)) == {
        "screw": {"stage": "evaluation", "error": "OSError", "message": "disk full"}}
    assert failures.attempt(lambda: None, str(tmp_path), "screw") is None
    assert failures.collect(str(tmp_path)) == {}


def test_attempt_lets_interrupts_and_stop_errors_through_and_records_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        failures.attempt(_fail("training", KeyboardInterrupt()), str(tmp_path), "pill")
    with pytest.raises(SystemExit):
        failures.attempt(_fail("training", SystemExit(3)), str(tmp_path), "pill")
    with pytest.raises(LookupError):
        failures.attempt(_fail("training", KeyError("x")), str(tmp_path), "pill",
                         stop=(LookupError,))
    assert failures.collect(str(tmp_path)) == {}
    error = failures.attempt(_fail("training", ValueError("bad")), str(tmp_path), "pill",
                             record=False)  # a worker that is not the chief writes nothing
    assert isinstance(error, ValueError) and not (tmp_path / "pill").exists()


def test_description_is_one_bounded_line():
    error = train.TrainingError("loss is NaN at step 120\n" + "details " * 100)
    assert failures.describe(error) == {"stage": "unknown", "error": "TrainingError",
                                        "message": "loss is NaN at step 120"}
    long = failures.describe(ValueError("x" * 1000))["message"]
    assert len(long) == failures.MESSAGE_CHARS and long.endswith("…")
    assert failures.describe(RuntimeError())["message"] == "RuntimeError"


def test_summary_line_names_each_failure_and_where_the_other_results_are():
    failed = {"screw": {"stage": "training", "error": "TrainingError",
                        "message": "loss is NaN at step 120"},
              "pill": {"stage": "evaluation", "error": "OSError", "message": "disk full"}}
    assert failures.summary_line(failed, 15, "runs/x/results.md") == (
        "2 of 15 categories failed: screw (training: TrainingError: loss is NaN at step 120), "
        "pill (evaluation: OSError: disk full); results for the other 13 in runs/x/results.md")
    assert failures.summary_line({"pill": failed["pill"]}, 1, "r.md").endswith("; no results")


def test_markdown_section_is_a_table_whose_cells_survive_pipes():
    text = failures.markdown({"pill": {"stage": "threshold", "error": "ValueError",
                                       "message": "a | b"}})
    assert text.startswith("### Failed categories\n")
    assert "| pill | threshold | ValueError: a / b |" in text
    assert failures.markdown({}) == ""


def test_summary_of_a_run_where_every_category_failed(tmp_path):
    failures.attempt(_fail("training", train.TrainingError("loss is NaN at step 3")),
                     str(tmp_path), "screw")
    table = summary.summarize_run(str(tmp_path), "3way")
    assert "No category finished." in table
    assert "| screw | training | TrainingError: loss is NaN at step 3 |" in table
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["categories"] == {} and written["failed"] == {
        "screw": {"stage": "training", "error": "TrainingError",
                  "message": "loss is NaN at step 3"}}
    assert (tmp_path / "results.md").read_text() == table + "\n"


def test_a_tf_data_error_is_described_by_its_cause():
    # The message of a truncated PNG met in training (with --decode_check=false), as TF 2.21
    # raises it.
    message = ("{{function_node __wrapped__IteratorGetNext_output_types_2_device_/job:localhost/"
               "replica:0/task:0/device:CPU:0}} Error in user-defined function passed to "
               "ParallelMapDatasetV2:1 transformation with iterator: Iterator::Root::Prefetch::"
               "ParallelMapV2::Zip[1]::BatchV2::ShuffleAndRepeat::MemoryCacheImpl::ParallelMapV2"
               ": Invalid PNG data, size 200\n\t [[{{node decode_image/DecodeImage}}]] "
               "[Op:IteratorGetNext] name: ")
    error = tf.errors.InvalidArgumentError(None, None, message)
    assert failures.describe(error)["message"] == "Invalid PNG data, size 200"
