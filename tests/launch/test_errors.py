"""launch/errors.py and launch/configs.py: one error handling for every launcher, library
messages (config fields) shown as flags, and flags named as the config fields they set."""

from __future__ import annotations

import dataclasses
import json

import pytest
import tensorflow as tf
from helpers import ROOT, TINY_TRAIN

from cutpaste_tf.config import RunConfig
from launch import configs, errors
from launch import export as export_launcher
from launch import predict as predict_launcher
from launch import train as train_launcher


@pytest.mark.parametrize("message, shown", [
    ("data_dir is required (the root of the BTAD dataset)",
     "--data_dir is required (the root of the BTAD dataset)"),
    ("dataset=visa expects <root>/split_csv/1cls.csv; not found: /d/model_dir/split_csv",
     "--dataset=visa expects <root>/split_csv/1cls.csv; not found: /d/model_dir/split_csv"),
    ("use another model dir, or overwrite=True to start again",
     "use another model dir, or --overwrite to start again"),
    ("threshold.quantile must be in (0, 1), got 1.5",
     "--threshold_quantile must be in (0, 1), got 1.5"),
    ("patch models score with Gaussian densities (density.kind 'gde'), got 'kde'",
     "patch models score with Gaussian densities (--density 'gde'), got 'kde'"),
    ("task 'rotation' needs a square image_size", "task 'rotation' needs a square --image_size"),
    ("2 categories (fabric, washer); choose one with category=<name>",
     "2 categories (fabric, washer); choose one with --category=<name>"),
    # Not settings: other dotted names, words, flags already, names inside paths or words.
    ("model dir 'x' holds a run with different settings (train.learning_rate)",
     "model dir 'x' holds a run with different settings (train.learning_rate)"),
    ("the threshold of the category", "the threshold of the category"),
    ("--model_dir is required", "--model_dir is required"),
    ("runs/test_model_dir0/config.json and image_sizes", "runs/test_model_dir0/config.json and "
     "image_sizes"),
])
def test_library_settings_are_shown_as_flags(message, shown):
    assert errors.to_flags(message) == shown


def test_every_config_field_is_its_flag_or_listed(parse_flags):
    parse_flags()
    names = errors.flag_names()

    def leaves(cls, prefix=""):
        for field in dataclasses.fields(cls):
            value = getattr(cls(), field.name)
            if dataclasses.is_dataclass(value):
                yield from leaves(type(value), f"{prefix}{field.name}.")
            else:
                yield f"{prefix}{field.name}", field.name

    missing = [path for path, name in leaves(RunConfig)
               if errors.FLAG_FOR.get(path, name) not in names]
    assert not missing, missing
    assert set(errors.FLAG_FOR.values()) <= names


@pytest.mark.parametrize("flagfile", sorted(p.name for p in (ROOT / "configs").glob("*.flags")))
def test_every_shipped_flagfile_gives_a_config(parse_flags, flagfile):
    parse_flags(f"--flagfile=configs/{flagfile}")
    config = configs.run_config()
    assert config.localization.dense_patch_size == configs.FLAGS.dense_patch_size
    assert config.localization.heatmaps == configs.FLAGS.heatmaps
    assert config.density.normalize_features == configs.FLAGS.normalize_features


def test_the_old_feature_spelling_still_works_with_one_deprecation_line(parse_flags,
                                                                          monkeypatch):
    said = []
    monkeypatch.setattr(configs.logging, "warning", lambda *args: said.append(args[0] % args[1:]))
    parse_flags("--feature=pool")
    assert configs.run_config().density.feature == "pooled"
    assert said == ["--feature=pool is deprecated; use --feature=pooled"]
    parse_flags("--feature=pooled")
    configs.run_config()
    assert len(said) == 1


@pytest.mark.parametrize("args, message", [
    (["--model_dir="], "error: --model_dir is required\n"),
    (["--threshold_quantile=1.5"], "error: --threshold_quantile must be in (0, 1), got 1.5\n"),
    (["--threshold_folds=1"], "error: --threshold_folds must be at least 2, got 1\n"),
    (["--dense_patch_size=8"], "error: --dense_patch_size must be >= 16, got 8\n"),
    (["--upsample_sigma=-1"], "error: --upsample_sigma must be positive, got -1.0\n"),
    (["--eval_batch_size=0"], "error: --eval_batch_size must be positive, got 0\n"),
    (["--backbone_weights=imagenet"], "error: --backbone_weights=imagenet: backbone "
     "'resnet18' has no pretrained weights; it takes 'none' or a .weights.h5 file saved from a "
     "resnet18 backbone (ImageNet weights: --backbone=efficientnet_b4)\n"),
    (["--dataset=folder"], "error: --dataset=folder needs --train_dir and --test_defect_dirs, "
     "and --test_good_dir or a --test_good_fraction of --train_dir held out\n"),
])
def test_train_reports_bad_input_in_flag_names_with_status_2(tmp_path, run_launcher, capsys,
                                                             args, message):
    status = run_launcher(train_launcher, *TINY_TRAIN, f"--model_dir={tmp_path / 'model'}",
                          *args)
    err = capsys.readouterr().err
    assert status == 2, err[-2000:]
    assert err.endswith(message), err[-2000:]
    assert not (tmp_path / "model").exists()


def test_train_refuses_the_training_folder_as_test_folder_before_training(tmp_path,
                                                                           run_launcher, capsys):
    washer = ROOT / "testdata" / "washer"
    status = run_launcher(train_launcher, *TINY_TRAIN, f"--model_dir={tmp_path / 'model'}",
                          "--dataset=folder", "--epochs=0", f"--train_dir={washer}/train/good",
                          f"--test_good_dir={washer}/train/good",
                          f"--test_defect_dirs={washer}/test/stain")
    err = capsys.readouterr().err
    assert status == 2, err[-2000:]
    assert ("error: 1 problem(s) in the data of category 'washer', found before training:\n"
            "  60 test image(s) are also training images, as the same file or the same bytes: "
            f"{washer}/train/good/000.png, ") in err, err[-2000:]
    assert "and 55 more; a network scores the images it trained on as normal" in err
    assert not (tmp_path / "model").exists()


def test_train_holds_test_normals_out_of_a_lone_good_folder_and_keeps_the_split(
        tmp_path, run_launcher, capsys):
    washer = ROOT / "testdata" / "washer"
    model_dir = tmp_path / "model"
    args = [*TINY_TRAIN, f"--model_dir={model_dir}", "--dataset=folder", "--category=widget",
            "--epochs=0", "--export_dir=none", f"--train_dir={washer}/train/good",
            f"--test_defect_dirs={washer}/test/stain"]
    assert run_launcher(train_launcher, *args) == 0
    split = model_dir / "widget" / "test_split.json"
    out, err = capsys.readouterr()
    assert (f"[widget] no --test_good_dir: 20% of 60 good images (12, seed 0) held out as test "
            f"normals; split in {split}\n") in out
    # --epochs=0 from scratch is allowed, with a warning that the features are a random net's.
    assert err.startswith("warning: --epochs=0 with a randomly initialised backbone: the "
                          "features are untrained; the AUROC will not measure the method\n")
    assert len(json.loads(split.read_text())["test_good"]) == 12
    status = run_launcher(train_launcher, *args, "--split_seed=1")
    err = capsys.readouterr().err
    assert status == 2, err[-2000:]
    assert err.endswith(f"error: {split}: the run's test normals were held out with "
                        "--split_seed=0, this run asks for --split_seed=1; use those, another "
                        "model dir, or --overwrite to start again from scratch\n"), err[-2000:]


def test_export_and_predict_report_missing_inputs_the_same_way(tmp_path, run_launcher, capsys):
    assert run_launcher(export_launcher, f"--model_dir={tmp_path}") == 2
    assert capsys.readouterr().err == (f"error: --model_dir={tmp_path} has no config.json; is "
                                       "it a launch.train model dir?\n")
    assert run_launcher(predict_launcher, f"--model={tmp_path}", "--images=x",
                        "--predict_batch_size=0") == 2
    assert capsys.readouterr().err == "error: --predict_batch_size must be positive, got 0\n"


def test_only_the_given_errors_are_reported(capsys):
    with pytest.raises(SystemExit) as exit_:
        with errors.reported(KeyError, status=1, where="[washer] "):
            raise KeyError("val_fraction=0.5")
    assert exit_.value.code == 1
    assert capsys.readouterr().err == "error: [washer] '--val_fraction=0.5'\n"
    with pytest.raises(RuntimeError):  # anything else is not swallowed
        with errors.reported(ValueError):
            raise RuntimeError("model_dir")


def _store_raises(monkeypatch, error: tf.errors.OpError) -> None:
    """``tf.io.gfile.stat`` raising, for every remote path, what TF raises for a store it
    cannot reach (local paths as usual)."""
    real_stat = tf.io.gfile.stat

    def stat(path):
        if "://" in path:
            raise error
        return real_stat(path)

    monkeypatch.setattr(tf.io.gfile, "stat", stat)


@pytest.mark.parametrize("launcher, args, error, line", [
    (train_launcher, ["--data_dir=gs://b/x", "--model_dir={tmp}/model"],
     tf.errors.FailedPreconditionError(
         None, None, "Error executing an HTTP request: libcurl code 6 meaning 'Could not "
         "resolve hostname', error details: Could not resolve host: www.googleapis.com\n\t when "
         "reading metadata of gs://b/x"),
     "error: --data_dir=gs://b/x: cannot reach Cloud Storage: Could not resolve host: "
     "www.googleapis.com\n"),
    (train_launcher, ["--data_dir={tmp}", "--model_dir=gs://b/runs/1"],
     tf.errors.PermissionDeniedError(
         None, None, "Error executing an HTTP request: HTTP response code 403 with body '{\n"
         '  "error": {\n    "code": 403,\n    "message": "Anonymous caller does not have '
         "storage.objects.get access to the Google Cloud Storage object.\"\n  }\n}\n'"),
     "error: --model_dir=gs://b/runs/1: Cloud Storage denied access: Anonymous caller does not "
     "have storage.objects.get access to the Google Cloud Storage object.\n"),
    (export_launcher, ["--model_dir=gs://b/runs/1"],
     tf.errors.UnauthenticatedError(None, None, "Could not locate the credentials file."),
     "error: --model_dir=gs://b/runs/1: Cloud Storage needs credentials (gcloud auth "
     "application-default login, or GOOGLE_APPLICATION_CREDENTIALS): Could not locate the "
     "credentials file.\n"),
])
def test_an_unreachable_remote_path_gives_its_cause_in_one_line_with_status_2(
        tmp_path, run_launcher, capsys, monkeypatch, launcher, args, error, line):
    _store_raises(monkeypatch, error)
    status = run_launcher(launcher, *[a.format(tmp=tmp_path) for a in args])
    err = capsys.readouterr().err
    assert status == 2 and err == line, err[-2000:]


@pytest.mark.parametrize("tpu", ["grpc://10.0.0.2:8470", "my-tpu"])
def test_a_tpu_address_is_not_a_path_and_an_unresolvable_tpu_is_one_line(
        tmp_path, run_launcher, capsys, monkeypatch, tpu):
    _store_raises(monkeypatch, tf.errors.UnimplementedError(
        None, None, "File system scheme 'grpc' not implemented"))

    def resolver(tpu):
        raise ValueError(f"Could not connect to {tpu}")

    monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver", resolver)
    status = run_launcher(train_launcher, f"--data_dir={tmp_path}",
                          f"--model_dir={tmp_path}/model", "--strategy=tpu", f"--tpu={tpu}")
    err = capsys.readouterr().err
    assert status == 2 and err == (
        f"error: --tpu={tpu}: cannot resolve the TPU: Could not connect to {tpu} (off Google "
        "Cloud, pass --tpu=grpc://<address>:8470 or run on a TPU VM)\n"), err[-2000:]
    assert not (tmp_path / "model").exists()
