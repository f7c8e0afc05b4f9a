"""The shared command-line flags, defined once in sections (:data:`SECTIONS`); :mod:`launch.configs`
turns them into typed configs. :data:`LAUNCHER_FLAGS` says which sections each launcher accepts: its ``--help``
lists them (:func:`help_text`), and a flag of another launcher is refused (:func:`check_flags`).

Defaults are the paper's settings (Appendix A.1-A.2) for the 3-way task; the files in
``configs/`` set the task-specific values (batch size 96 for 3-way, 64 for binary tasks).

Naming rule: a flag is the name of the config field it sets (``--batch_size`` is
``train.batch_size``, ``--dense_patch_size`` is ``localization.dense_patch_size``, see
``cutpaste_tf/config.py``) or of the library argument it is passed as (``--images``). Where
the field's name alone would be ambiguous on the command line, the flag puts its section's
name in front (``--threshold_quantile`` is ``threshold.quantile``, ``--threshold_folds`` is
``threshold.folds``), and a section's ``kind`` is named by the section alone (``--density`` is
``density.kind``). Library errors name the fields; :mod:`launch.errors` translates them back.
"""

from __future__ import annotations

import functools
import re
import sys
import textwrap
from typing import Callable

from absl import app, flags, logging

from cutpaste_tf.config import (
    CLASSIFIER_INITS,
    GRADCAM_LAYERS,
    HEAD_INITS,
    PRECISIONS,
    TASK_VIEWS,
)
from launch import errors

FLAGS = flags.FLAGS

# Data.
flags.DEFINE_string("data_dir", None, "Root of the dataset, in the layout --dataset names.")
flags.DEFINE_enum("dataset", "mvtec", ["mvtec", "visa", "btad", "mvtec_loco", "kolektorsdd2",
                                       "folder", "cifar10", "elpv"],
                  "mvtec: <data_dir>/<category>/{train,test,ground_truth} (MVTec AD, MPDD and "
                  "others in its layout); visa, btad, mvtec_loco, kolektorsdd2: those datasets "
                  "as published, under --data_dir; folder: --train_dir, --test_defect_dirs "
                  "(and --test_good_dir, --mask_dir); cifar10 (one class normal) and elpv "
                  "(solar cells): written once as PNGs into --data_dir (docs/datasets.md).")
flags.DEFINE_string("source", None, "--dataset=cifar10: cifar-10-python.tar.gz, "
                    "cifar-10-binary.tar.gz or the folder extracted from either.")
flags.DEFINE_float("heldout_fraction", 0.25, "--dataset=elpv: fraction of each cell type's "
                   "normal cells held out as normal test images.")
flags.DEFINE_integer("split_seed", 0, "--dataset=elpv, and --dataset=folder without "
                     "--test_good_dir: seed of the train/test split.")
flags.DEFINE_list("category", ["all"], "Categories to run (comma-separated), or 'all'.")
flags.DEFINE_string("train_dir", None, "--dataset=folder: folder of normal training images.")
flags.DEFINE_string("test_good_dir", None, "--dataset=folder: folder of normal test images "
                    "(none: --test_good_fraction of --train_dir is held out).")
flags.DEFINE_float("test_good_fraction", 0.2, "--dataset=folder without --test_good_dir: "
                   "fraction of --train_dir's images held out (seeded by --split_seed) as normal "
                   "test images; the split is written to <model_dir>/<category>/test_split.json.")
flags.DEFINE_list("test_defect_dirs", [], "--dataset=folder: folders of defective test images.")
flags.DEFINE_string("mask_dir", None, "--dataset=folder: optional ground-truth masks.")
flags.DEFINE_enum("category_kind", "object", ["texture", "object"],
                  "Whether the images are a texture or an object, for --dataset=folder and for "
                  "categories that neither the paper nor the dataset's categories.json "
                  "classifies (MPDD's under --dataset=mvtec; every category of visa, btad, "
                  "mvtec_loco, kolektorsdd2). Such categories are never aligned.")
flags.DEFINE_list("image_size", ["256"], "Training/eval image size: one value or height,width.")
flags.DEFINE_integer("min_image_size", 32, "Smallest height or width (pixels) a dataset image may "
                     "have; smaller ones stop the run before training.")
flags.DEFINE_integer("max_image_pixels", 50_000_000, "Largest width x height a dataset image may "
                     "have, checked from its header before decoding (a guard against "
                     "decompression bombs).")
flags.DEFINE_float("mask_threshold", 0.5, "Ground-truth masks: a pixel is a defect when its "
                   "value is at least this fraction of the mask's full scale (255 for 8-bit, "
                   "65535 for 16-bit; colour masks: the largest channel); a mask with no pixel "
                   "that high but some non-zero (0/1, class numbers) counts its non-zero pixels. "
                   "In (0, 1].")
flags.DEFINE_bool("decode_check", True, "Before training, decode every image and mask once to "
                  "find truncated or corrupt files (false: check headers only).")

# Output.
flags.DEFINE_string("model_dir", None, "Where checkpoints, logs, densities and results go.")
flags.DEFINE_string("export_dir", None, "SavedModel root (default: <model_dir>/export); "
                    "'none' skips the export.")
flags.DEFINE_integer("export_version", 1, "Version folder of the export (TF Serving layout).")
flags.DEFINE_bool("overwrite", False, "Delete an existing --model_dir and start from scratch.")
flags.DEFINE_bool("progress", True, "Show training progress (Keras' bar on a terminal, plain "
                  "lines elsewhere) and a start and an end line for every later stage.")
flags.DEFINE_float("progress_every_s", 30.0, "Where stdout is not a terminal (a log file, a "
                   "pipe): seconds between plain progress lines (0: every step); the last step "
                   "always prints one.")

# Proxy task and optimisation (Appendix A.1).
flags.DEFINE_enum("task", "3way", sorted(TASK_VIEWS), "Proxy task.")
flags.DEFINE_integer("batch_size", 96, "Views per batch: 96 for 3way (32 images x 3 views), "
                     "64 for binary tasks (32 x 2).")
flags.DEFINE_integer("epochs", 256, "Epochs of --steps_per_epoch steps (the paper: 256 x 256).")
flags.DEFINE_integer("steps_per_epoch", 256, "Steps in one 'epoch' (the paper's definition).")
flags.DEFINE_float("learning_rate", 0.03, "Peak learning rate of the single cosine cycle.")
flags.DEFINE_integer("warmup_steps", 0, "Steps of linear learning-rate warm-up before the "
                     "cosine cycle (0: none, as in the paper).")
flags.DEFINE_float("momentum", 0.9, "SGD momentum.")
flags.DEFINE_float("weight_decay", 3e-5, "L2 coefficient: wd * sum(tf.nn.l2_loss(w)).")
flags.DEFINE_integer("seed", 0, "Seed for initialisation, shuffling and augmentation.")
flags.DEFINE_integer("checkpoint_every", 256, "Steps between checkpoints.")
flags.DEFINE_integer("log_every", 16, "Steps between TensorBoard / progress updates.")
flags.DEFINE_bool("jit_compile", False, "Compile the train step with XLA.")

# Scale: distribution, precision, where augmentation runs.
flags.DEFINE_enum("strategy", "auto", ["auto", "default", "mirrored", "multi_worker", "tpu"],
                  "tf.distribute strategy (see cutpaste_tf/training/distribute.py); --batch_size "
                  "is global.")
flags.DEFINE_string("tpu", None, "--strategy=tpu: the Cloud TPU's name or grpc:// address, or "
                    "'local' on a TPU VM.")
flags.DEFINE_bool("require_accelerator", False, "Refuse to start (exit 2, before any data is "
                  "read) when TensorFlow sees no GPU or TPU, instead of training on the CPU.")
flags.DEFINE_enum("precision", "float32", list(PRECISIONS),
                  "Training compute precision (mixed_bfloat16 on TPU and recent GPUs); the "
                  "density, scores and export stay float32.")
flags.DEFINE_bool("jit_augment", True, "Compile the tf.data pipeline's augmentation with XLA "
                  "(about 2x faster on a CPU host; pixels differ from the plain graph's by float "
                  "rounding, about 1e-6).")
flags.DEFINE_bool("augment_on_device", False, "Augment inside the train step on the "
                  "accelerator instead of in the tf.data pipeline on the host CPU.")

# Model.
flags.DEFINE_enum("backbone", "resnet18", ["resnet18", "efficientnet_b4"], "Backbone network.")
flags.DEFINE_string("backbone_weights", "none", "Initial backbone weights: 'none' (random), "
                    "'imagenet' (efficientnet_b4: Keras' file, from its cache or downloaded), or "
                    "a local file: Keras' efficientnetb4_notop.h5, or a .weights.h5 saved from "
                    "the same backbone.")
flags.DEFINE_integer("head_epochs", 0, "Two-stage fine-tuning (Appendix A.4): epochs that "
                     "train only the head with the backbone frozen, before --epochs of all "
                     "layers (0: one stage). --epochs=0 --head_epochs=0: no training.")
flags.DEFINE_float("head_learning_rate", 0.03, "Peak learning rate of the head-only stage's "
                   "cosine cycle.")
flags.DEFINE_bool("freeze_batchnorm", False, "Keep the backbone's batch norm layers frozen "
                  "(inference mode) while the backbone trains (Appendix A.4).")
flags.DEFINE_enum("classifier_init", "zeros", list(CLASSIFIER_INITS),
                  "Initial kernel of the last (classifier) layer: zeros, so the first gradients "
                  "carry only the task, or Keras' default glorot_uniform (the authors' code).")
flags.DEFINE_list("head_widths", ["512"], "Widths of the MLP projection head's Dense -> "
                  "BatchNorm -> ReLU layers ('' for none); the authors' DROC code has eight 512s.")
flags.DEFINE_integer("head_embedding", 0, "Width of a last, linear Dense layer of the head "
                     "(0: none); the authors' DROC head ends in a linear 128 after its 512s.")
flags.DEFINE_bool("head_batchnorm", True, "BatchNorm in each head layer; --nohead_batchnorm "
                  "gives Dense (with bias, He initialisation) -> ReLU layers.")
flags.DEFINE_bool("input_standardization", False, "Standardise each image's grey level and "
                  "contrast at the model's input (luma mean 0.5, std 0.2), in the graph: "
                  "blind to global lighting changes, and to defects that are only that.")
flags.DEFINE_enum("head_init", "glorot_uniform", list(HEAD_INITS),
                  "Initial kernels of the head's Dense layers before BatchNorm: Keras' default, "
                  "or PyTorch's nn.Linear default (uniform in +-1/sqrt(fan_in)).")

# CutPaste augmentation (Appendix A.2) and pre-augmentation (Sec. 2.1).
flags.DEFINE_list("area_ratio", ["0.02", "0.15"], "CutPaste patch area / image area range.")
flags.DEFINE_list("aspect_ratio", ["0.3", "3.3"], "CutPaste patch aspect ratio range (log-uniform).")
flags.DEFINE_list("scar_width", ["2", "16"], "Scar width range in pixels (see "
                  "--scar_reference_size).")
flags.DEFINE_list("scar_length", ["10", "25"], "Scar length range in pixels (see "
                  "--scar_reference_size).")
flags.DEFINE_integer("scar_reference_size", 0, "0: --scar_width/--scar_length are pixels at "
                     "every image size, as the paper states them. N > 0: they are pixels at NxN "
                     "and scale with sqrt(H*W)/N at other sizes (256: the previous default).")
flags.DEFINE_float("scar_angle", 45.0, "Scar rotation range: U(-angle, angle) degrees.")
flags.DEFINE_float("patch_jitter", 0.1, "Colour jitter of the pasted patch (all four factors; "
                   "Appendix A.2's 0.1; Table 8 puts 0.2 level or above it).")
flags.DEFINE_float("translate", 0.0625, "Pre-augmentation: max random shift as a fraction of "
                   "the size, edges repeated (0.0625: up to 1/16; 0: none, which leaves a moved "
                   "camera reading as a defect, docs/learning.md point 16).")
flags.DEFINE_list("jitter", ["0.1", "0.1", "0.1", "0"],
                  "Pre-augmentation colour jitter of every training image: brightness, contrast, "
                  "saturation, hue (torchvision ColorJitter semantics; 0,0,0,0: none, which "
                  "leaves a darker capture reading as a defect, docs/learning.md point 16).")

# Density and evaluation.
flags.DEFINE_enum("density", "gde", ["gde", "kde"], "Density estimator on the features.")
flags.DEFINE_enum("feature", "pooled", ["pooled", "pool", "embedding", "level7"],
                  "Features the density models: average-pooled backbone output (the paper), "
                  "the projection head's output, or (efficientnet_b4) the pooled output of "
                  "block group 7 (Table 3's level-7). 'pool': pooled's old spelling, deprecated.")
flags.DEFINE_bool("normalize_features", True, "L2-normalise features before the density.")
flags.DEFINE_float("kde_gamma", None, "KDE kernel width gamma (default: 10 / (var * dim)).")
flags.DEFINE_integer("eval_batch_size", 32, "Batch size for feature extraction.")
flags.DEFINE_integer("density_augment_copies", 0, "Fit the density on this many colour-jittered "
                     "copies of each training image too (0: un-augmented images only, as the "
                     "paper), so that it is wide along lighting directions.")
flags.DEFINE_list("density_augment_jitter", ["0.1", "0.1", "0.1", "0"],
                  "--density_augment_copies: their colour jitter (brightness, contrast, "
                  "saturation, hue).")

# Drift: the stress test after evaluation (launch.train, launch.experiment, launch.robustness).
flags.DEFINE_bool("stress_test", True, "After evaluation, score held-out (or out-of-fold) normal "
                  "training images under lighting, pose, blur, noise and JPEG shifts: the share "
                  "flagged and the AUROC against unshifted anomalies (results.md, report).")
flags.DEFINE_string("stress_shifts", "default", "The stress test's shifts: 'default', "
                    "'photometric' (no translation or rotation: for parts where a turn is a "
                    "defect), or kind:amount pairs, e.g. brightness:-0.1,blur:1.")
flags.DEFINE_integer("stress_max_images", 200, "The stress test shifts at most this many "
                     "normal images (evenly spread), to bound its time.")

# Threshold: how training sets the exported decision threshold (launch.export can recompute it).
flags.DEFINE_float("val_fraction", 0.0,
                   "Fraction of train/good held out (split by --seed) from training and the "
                   "density fit, to set the threshold. 0 (the paper's protocol): out-of-fold "
                   "scores of the training images instead.")
flags.DEFINE_float("threshold_quantile", 0.95,
                   "Threshold = this quantile of the held-out (or out-of-fold) normal scores; "
                   "a new normal image exceeds it with probability <= 1 - q given >= q/(1-q) "
                   "held-out images. With launch.export: recompute from the stored scores.")
flags.DEFINE_integer("threshold_folds", 10, "Folds of the out-of-fold fallback (val_fraction=0).")
flags.DEFINE_string("val_good_dir", None, "Optional labelled validation set: normal images. With "
                    "--val_defect_dirs the threshold maximises F1 on it (one category only).")
flags.DEFINE_list("val_defect_dirs", [], "Optional labelled validation set: defective images.")

# Re-export (launch.export).
flags.DEFINE_float("threshold", None, "Set this threshold (no retraining); launch.predict: decide "
                   "with it instead of the model's stored one.")
flags.DEFINE_bool("tflite", False, "launch.export: also write a TFLite model of the float "
                  "signature (images already at the model size).")

# Prediction (launch.predict).
flags.DEFINE_string("model", None, "launch.predict: an export version folder, a folder of "
                    "versions (the newest is used) or a model dir (with --category).")
flags.DEFINE_string("images", None, "launch.predict: an image folder (searched recursively) or "
                    "a glob pattern.")
flags.DEFINE_string("output_dir", None, "launch.predict: where predictions.csv/.json and "
                    "heatmaps/ go (default: predictions/ in the current directory).")
flags.DEFINE_integer("predict_batch_size", 16, "launch.predict: images per model call.")

# Localisation (Sec. 2.4, 4.2, Appendix A.5).
flags.DEFINE_enum("model_type", "image", ["image", "patch"],
                  "image: train on whole images (Table 1; GradCAM maps where test masks exist); "
                  "patch: train on random crops and score every patch densely (Table 2).")
flags.DEFINE_list("train_patch_size", ["64"], "--model_type=patch: training crop size, one "
                  "value or height,width (the paper: 64 from 256x256 images).")
flags.DEFINE_integer("dense_patch_size", 32, "--model_type=patch: side of the patches scored "
                     "at test time (the paper: 32).")
flags.DEFINE_integer("stride", 4, "--model_type=patch: stride of the dense patches "
                     "(the paper: 4, giving a 57x57 map at 256x256).")
flags.DEFINE_float("upsample_sigma", None, "Sigma in pixels of the Gaussian receptive-field "
                   "upsampling kernel (default: dense_patch_size / 4).")
flags.DEFINE_enum("per_location", "auto", ["auto", "true", "false"],
                  "--model_type=patch: one GDE per score-map location (true), one shared GDE "
                  "(false), or per the category's alignment (auto, Appendix A.5).")
flags.DEFINE_integer("dense_chunk", 512, "Patches per model call in dense scoring (memory).")
flags.DEFINE_bool("gradcam", True, "--model_type=image: GradCAM localisation metrics and "
                  "heatmaps when the test set has ground-truth masks.")
flags.DEFINE_enum("gradcam_layer", "auto", list(GRADCAM_LAYERS),
                  "--model_type=image, ResNet-18: the stage whose map GradCAM explains. auto: "
                  "the deepest whose map is at least 8x8 (the paper's map at 256 px): layer4 at "
                  "256, layer3 at 128, layer2 at 64. A map under 8x8 reports no pixel AUROC.")
flags.DEFINE_bool("heatmaps", True, "Write heatmap PNGs: of the test images (launch.train), of "
                  "the scored images when the model has an anomaly map (launch.predict).")

# Report.
flags.DEFINE_string("report_path", None, "launch.report: where the HTML report goes "
                    "(default: <model_dir>/report.html).")

# Experiments (launch.experiment): categories x tasks x seeds (x sweep values), one model dir each.
flags.DEFINE_string("experiment_dir", None, "launch.experiment: root of the experiment's runs "
                    "(<experiment_dir>/<task>[/<flag>=<value>]/seed_<k>/) and tables.")
flags.DEFINE_list("seeds", ["5"], "launch.experiment: one number N runs seeds 0..N-1; several "
                  "values are the seeds themselves (e.g. 0,3,7).")
flags.DEFINE_list("tasks", [], "launch.experiment: proxy tasks to run (default: --task); every "
                  "other flag, --batch_size included, applies to all of them.")
flags.DEFINE_string("sweep", None, "launch.experiment: FLAG=V1,V2,... runs every value of one "
                    "training flag (x every seed); list-valued flags separate their own values "
                    "with ':' (--sweep=area_ratio=0.02:0.1,0.02:0.2).")


# Synthetic anomalies (launch.synthetic).
flags.DEFINE_string("natural_dir", None, "launch.synthetic: folder of images whose patches fill "
                    "the natural-image shapes (default: train/good of the dataset's other "
                    "categories).")
flags.DEFINE_integer("synthetic_copies", 1, "launch.synthetic: altered versions of each normal "
                     "test image per kind (different seeds).")
flags.DEFINE_enum("synthetic_on", "test", ["test", "heldout"], "launch.synthetic: the normal "
                  "images to alter: 'test' (the test set's normal images) or 'heldout' (the "
                  "training images the run held out with --val_fraction; no test image is read, "
                  "so settings can be compared without defect labels).")
flags.DEFINE_bool("synthetic_examples", True, "launch.synthetic: write a PNG grid of examples "
                  "into each category folder.")

# Labelled validation (launch.validate).
flags.DEFINE_string("validation_dir", None, "launch.validate: labelled defects kept apart from "
                    "the test set, one subfolder per kind (default: <data_dir>/<category>/"
                    "validation, where --dataset=elpv writes its uncertain cells).")

# Embedding plot: t-SNE (launch.tsne).
flags.DEFINE_float("tsne_perplexity", 30.0, "launch.tsne: t-SNE perplexity (clipped to "
                   "(N - 1) / 3 for small sets).")


# The sections of the flags above, in definition order: each section's first flag and its title
# (--help and docs/flags.md show the titles; a flag belongs to the section whose first flag is the
# last one defined before it, so a flag added inside a section joins it).
SECTIONS: tuple[tuple[str, str], ...] = (
    ("data_dir", "Data"),
    ("model_dir", "Output"),
    ("task", "Proxy task and optimisation (Appendix A.1)"),
    ("strategy", "Scale: distribution, precision, where augmentation runs"),
    ("backbone", "Model"),
    ("area_ratio", "CutPaste augmentation (Appendix A.2) and pre-augmentation (Sec. 2.1)"),
    ("density", "Density and evaluation"),
    ("stress_test", "Drift: the stress test after evaluation (launch.train, launch.experiment, "
                    "launch.robustness)"),
    ("val_fraction", "Threshold: how training sets the exported decision threshold "
                     "(launch.export can recompute it)"),
    ("threshold", "Re-export (launch.export)"),
    ("model", "Prediction (launch.predict)"),
    ("model_type", "Localisation (Sec. 2.4, 4.2, Appendix A.5)"),
    ("report_path", "Report"),
    ("experiment_dir", "Experiments (launch.experiment): categories x tasks x seeds (x sweep "
                       "values), one model dir each"),
    ("natural_dir", "Synthetic anomalies (launch.synthetic)"),
    ("validation_dir", "Labelled validation (launch.validate)"),
    ("tsne_perplexity", "Embedding plot: t-SNE (launch.tsne)"),
)
# The flags a launcher defines in its own module, so that every launcher knows them without
# importing it (tests/launch/test_flags.py checks them against the modules).
OWN_FLAGS: dict[str, tuple[str, ...]] = {
    "launch.accelerator_check": ("check_output", "check_size", "budget_s", "train_seconds",
                                 "combinations"),
    "launch.benchmark": ("steps", "output", "sections", "bench_tasks", "bench_sources"),
    "launch.budget_study": ("study_dir", "data_root", "mvtec_dir", "study_families",
                            "study_arms", "study_steps", "study_seeds", "study_image_size",
                            "study_jobs", "study_summarize_only", "study_drift"),
    "launch.diagnose": ("heads", "probe_batches", "diagnose_output"),
}
# Which flags each launcher accepts: whole sections (a title up to its first ':' or ' (') and
# single flags of other sections ('--name'). A launcher also accepts the flags its own module
# defines, and absl's (--flagfile, --helpfull, --verbosity, ...); a flag of any other launcher is
# refused (:func:`check_flags`). The training sections go together: the shipped configs/*.flags
# hold them and serve launch.train, launch.experiment and the launchers that measure training
# (benchmark, diagnose, accelerator_check) alike.
TRAINING = ("Data", "Output", "Proxy task and optimisation", "Scale", "Model",
            "CutPaste augmentation", "Density and evaluation", "Drift", "Threshold",
            "Localisation")
LAUNCHER_FLAGS: dict[str, tuple[str, ...]] = {
    "launch.train": TRAINING,
    "launch.experiment": (*TRAINING, "Experiments"),
    "launch.benchmark": TRAINING,
    "launch.diagnose": TRAINING,
    "launch.accelerator_check": TRAINING,
    "launch.export": ("Re-export", "--model_dir", "--category", "--export_dir",
                      "--export_version", "--threshold_quantile"),
    "launch.predict": ("Prediction", "--category", "--threshold", "--heatmaps", "--progress"),
    "launch.report": ("Report", "--model_dir", "--experiment_dir"),
    "launch.synthetic": ("Synthetic anomalies", "--model_dir", "--data_dir", "--dataset",
                         "--category", "--category_kind", "--seed"),
    "launch.validate": ("Labelled validation", "--model_dir", "--data_dir", "--category"),
    "launch.tsne": ("Embedding plot", "--model_dir", "--data_dir", "--dataset", "--category",
                    "--category_kind", "--seed"),
    "launch.budget_study": (),
    "launch.robustness": ("Drift", "--model_dir", "--data_dir", "--dataset", "--category",
                          "--category_kind", "--seed", "--validation_dir"),
}
HELP_FLAGS = ("--help", "-help", "-h", "-?", "--helpshort", "-helpshort")


def section_key(title: str) -> str:
    """The name :data:`LAUNCHER_FLAGS` gives a section: its title up to a ':' or ' ('."""
    return re.split(r":| \(", title, maxsplit=1)[0].strip()


@functools.lru_cache(maxsize=None)
def shared_sections() -> dict[str, str]:
    """Flag of this module -> its section's title (:data:`SECTIONS`), in definition order."""
    starts, title, found = dict(SECTIONS), None, {}
    for flag in FLAGS.flags_by_module_dict()[__name__]:
        title = starts.get(flag.name, title)
        found[flag.name] = title
    return found


def own_flags() -> dict[str, str]:
    """Flag defined in a launcher's own module (launch.benchmark's --steps) -> that launcher
    (:data:`OWN_FLAGS`)."""
    return {name: launcher for launcher, names in OWN_FLAGS.items() for name in names}


def accepted(launcher: str) -> list[str]:
    """The project's flags ``launcher`` accepts, in definition order (absl's not listed)."""
    entries = LAUNCHER_FLAGS[launcher]
    shared = [name for name, title in shared_sections().items()
              if section_key(title) in entries or f"--{name}" in entries]
    return shared + [name for name, module in own_flags().items() if module == launcher]


def owners(name: str) -> list[str]:
    """The launchers that accept flag ``name`` (none: not a project flag)."""
    return [launcher for launcher in LAUNCHER_FLAGS if name in accepted(launcher)]


def foreign_flag_message(name: str, launcher: str) -> "str | None":
    """``--tflite is a flag of launch.export, not launch.train (...)`` when ``name`` is a flag
    of other launchers than ``launcher``; None when ``launcher`` accepts it or no launcher does."""
    others = owners(name)
    if not others or launcher in others:
        return None
    first = others[0]
    more = f" and {len(others) - 1} other launcher{'s' if len(others) > 2 else ''}" if len(
        others) > 1 else ""
    return (f"--{name} is a flag of {first}{more}, not {launcher} "
            f"(python -m {first} --help)")


def check_flags(launcher: str) -> None:
    """Ends the launcher (exit 2) when a flag of another launcher was given, on the command line
    or in a flagfile: one line naming the launcher it belongs to."""
    for name in [*shared_sections(), *own_flags()]:
        if name in FLAGS and FLAGS[name].present:
            message = foreign_flag_message(name, launcher)
            if message:
                errors.fail(message)


def flags_into_string(launcher: str) -> str:
    """A flagfile of every flag ``launcher`` accepts, at its current value (what absl's
    ``FLAGS.flags_into_string()`` writes, without absl's own flags and other launchers')."""
    return "".join(FLAGS[name].serialize() + "\n" for name in accepted(launcher)
                   if name in FLAGS and FLAGS[name].value is not None)


def _flag_help(flag: flags.Flag) -> list[str]:
    name = f"--[no]{flag.name}" if isinstance(flag, flags.BooleanFlag) else f"--{flag.name}"
    default = "unset" if flag.default is None else (flag.default_as_str or "").strip("'")
    text = flag.help or ""
    values = getattr(flag.parser, "enum_values", None)
    if values:
        text = f"one of {', '.join(values)}. " + text.removeprefix(f"<{'|'.join(values)}>: ")
    wrapped = textwrap.wrap(text, 96, initial_indent="      ", subsequent_indent="      ")
    return [f"  {name}  (default: {default or 'empty'})", *wrapped]


def help_text(launcher: str, doc: str = "") -> str:
    """What ``python -m <launcher> --help`` prints: the module's docstring, then the flags it
    accepts, grouped by section, with their defaults and help."""
    groups: dict[str, list[str]] = {}
    sections = shared_sections()
    for name in accepted(launcher):
        title = sections[name] if name in sections else f"{launcher}'s own flags"
        if name in FLAGS:
            groups.setdefault(title, []).extend(_flag_help(FLAGS[name]))
    out = [f"python -m {launcher}", "", textwrap.dedent(doc).strip(), ""]
    for title, lines in groups.items():
        out += [title, *lines, ""]
    out += ["absl's flags are accepted too: --flagfile=FILE (a file of flags, one a line, as in",
            "configs/), --helpfull (every flag absl knows), --verbosity, --logtostderr."]
    return "\n".join(out) + "\n"


def suggested_as_flags(message: str) -> str:
    """absl's unknown-flag message with its suggestions written as flags: ``Did you mean:
    --threshold, --threshold_folds?``, not ``threshold, threshold_folds ?``."""
    match = re.search(r"Did you mean: (.+?) \?$", message)
    if not match:
        return message
    names = [f"--{n.strip().lstrip('-')}" for n in match.group(1).split(",")]
    return f"{message[:match.start()]}Did you mean: {', '.join(names)}?"


def run(main: Callable[[list[str]], None]) -> None:
    """``app.run(main)`` for a launcher (``if __name__ == "__main__": flags.run(main)``):
    ``--help`` prints :func:`help_text` and exits 0; a flag absl cannot parse, or one of another
    launcher, ends it with one ``error:`` line and exit status 2."""
    module = sys.modules[main.__module__]
    launcher = module.__spec__.name
    if any(arg in HELP_FLAGS for arg in sys.argv[1:]):
        sys.stdout.write(help_text(launcher, module.__doc__ or ""))
        sys.exit(0)

    def parse(argv: list[str]) -> list[str]:
        try:
            return FLAGS(argv)
        except flags.UnrecognizedFlagError as e:  # maybe a flag of a module not imported here
            names = [e.flagname, e.flagname.removeprefix("no")]  # --noNAME: bool flag NAME
            known = [m for m in (foreign_flag_message(n, launcher) for n in names) if m]
            errors.fail(known[0] if known else f"{suggested_as_flags(str(e))} "
                        f"(python -m {launcher} --help)")
        except flags.Error as e:
            errors.fail(f"{e} (python -m {launcher} --help)")

    app.run(main, flags_parser=parse)


def start(argv: list[str], launcher: str) -> None:
    """The prologue every launcher's ``main`` begins with: no positional arguments (a typo'd
    flag lands there), no flag of another launcher (:func:`check_flags`), only warnings from
    absl, and every remote path flag's store reachable. ``launcher``: the module's name."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    check_flags(launcher)
    logging.set_verbosity(logging.WARNING)
    errors.check_remote_paths()
