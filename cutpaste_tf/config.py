"""Typed, frozen configuration for a CutPaste run, with a JSON round trip.

Defaults are the paper's settings (Appendix A.1-A.2). The launcher builds these from flags;
library code only ever sees these objects or plain arguments.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, Optional

# Proxy task -> the views each source image contributes, in label order.
TASK_VIEWS: dict[str, tuple[str, ...]] = {
    "3way": ("normal", "cutpaste", "scar"),
    "cutpaste": ("normal", "cutpaste"),
    "scar": ("normal", "scar"),
    "union": ("normal", "union"),
    # Baselines of Tables 1 and 4 (cutpaste_tf/ops/baselines.py).
    "rotation": ("normal", "rot90", "rot180", "rot270"),
    "cutout": ("normal", "cutout"),
    "cutout_mean": ("normal", "cutout_mean"),
    "cutout_color": ("normal", "cutout_color"),
    "scar_cutout": ("normal", "scar_cutout"),
    "confetti": ("normal", "confetti"),
}

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
CLASSIFIER_INITS = ("zeros", "glorot_uniform")
# Kernel initialisers of the head's Dense layers (before BatchNorm): Keras' default, or
# PyTorch's nn.Linear default, uniform in +-1/sqrt(fan_in) (a third of its variance).
HEAD_INITS = ("glorot_uniform", "torch")


def check_range(name: str, bounds, lo: float, hi: float) -> None:
    """Raises ValueError unless ``bounds`` is two increasing values in [lo, hi]."""
    if len(bounds) != 2 or not lo <= bounds[0] <= bounds[1] <= hi:
        raise ValueError(f"{name} must be two increasing values in [{lo}, {hi}], got {bounds}")


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """CutPaste / Scar parameters (Appendix A.2) and the pre-augmentation of Sec. 2.1."""

    area_ratio: tuple[float, float] = (0.02, 0.15)
    aspect_ratio: tuple[float, float] = (0.3, 3.3)
    scar_width: tuple[float, float] = (2.0, 16.0)
    scar_length: tuple[float, float] = (10.0, 25.0)
    scar_angle: float = 45.0
    # 0: scar sizes are pixels at every image size, as Appendix A.2 states them. N > 0: they are
    # pixels at N x N and scale with sqrt(H * W) / N (keeping the scar's share of the image).
    scar_reference_size: int = 0
    # Colour jitter of the pasted patch, all four factors: 0.1, as Appendix A.2 states. Table 8
    # puts 0.2 level or above it (texture 97.4 against 97.0); on real ELPV poly cracks kept apart
    # from the test set the two tied over three seeds (docs/learning.md, points 10 and 11).
    patch_jitter: float = 0.1
    # Pre-augmentation of every image (Appendix A.1 names "random translation and color
    # jitters" but gives no strengths): a shift of up to 1/16 (0.0625, edge pixels repeated) and
    # 0.1 of brightness, contrast and saturation, as configs/3way.flags. Short runs on aligned
    # images learn the proxy task faster without them (docs/learning.md, points 7 and 9), but
    # then a darker or moved capture of normal parts reads as a defect (point 16), so every
    # default and shipped config keeps them. No hue: a hue shift would teach the representation
    # to ignore the colour changes that stains are. The pasted patch keeps its own jitter
    # (patch_jitter, above), whose strength the paper does state.
    translate: float = 0.0625
    jitter: tuple[float, float, float, float] = (0.1, 0.1, 0.1, 0.0)

    def __post_init__(self):
        check_range("area_ratio", self.area_ratio, 0.0, 1.0)
        check_range("aspect_ratio", self.aspect_ratio, 0.0, float("inf"))
        check_range("scar_width", self.scar_width, 0.0, float("inf"))
        check_range("scar_length", self.scar_length, 0.0, float("inf"))
        if not 0.0 <= self.scar_angle <= 180.0:
            raise ValueError(f"scar_angle must be in [0, 180] degrees, got {self.scar_angle}")
        if self.scar_reference_size < 0:
            raise ValueError("scar_reference_size must be 0 (sizes in pixels) or a positive image "
                             f"size, got {self.scar_reference_size}")
        if not 0.0 <= self.patch_jitter <= 0.5:
            raise ValueError(f"patch_jitter must be in [0, 0.5] (hue shifts are at most half a "
                             f"turn), got {self.patch_jitter}")
        if len(self.jitter) != 4 or min(self.jitter) < 0 or self.jitter[3] > 0.5:
            raise ValueError("jitter must be four values (brightness, contrast, saturation, hue), "
                             f"each >= 0 and hue <= 0.5, got {self.jitter}")
        if not 0.0 <= self.translate < 0.5:
            raise ValueError(f"translate must be in [0, 0.5) of the image size, got {self.translate}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Backbone and projection head. One 512-wide hidden layer: the authors' DROC code has
    eight, which at initialisation sends the backbone exploding, task-blind gradients and stays
    at chance for hundreds of steps (docs/learning.md)."""

    backbone: str = "resnet18"
    head_widths: tuple[int, ...] = (512,)
    # Initial backbone weights: None (random), "imagenet" (EfficientNet only) or a local file.
    backbone_weights: Optional[str] = None
    # The classifier's initial kernel: "zeros" (logits start at 0, the first gradients carry
    # only the task) or "glorot_uniform" (Keras' default, the authors' code).
    classifier_init: str = "zeros"
    # BatchNorm in each head layer (Dense -> BN -> ReLU); False: Dense with bias and He
    # initialisation -> ReLU.
    head_batchnorm: bool = True
    # The head's Dense kernels when they feed BatchNorm (HEAD_INITS): BatchNorm undoes their
    # scale, so this sets how fast they turn (a smaller kernel turns faster).
    head_init: str = "glorot_uniform"
    # Width of a last, linear Dense layer of the head (0: none). The authors' DROC head ends in
    # a linear 128 layer after its eight 512 ones; the classifier then reads those 128.
    head_embedding: int = 0
    # Per-image intensity standardisation at the model's input: each image's luma is moved to
    # mean 0.5 and standard deviation 0.2 before the backbone (in the graph, so training,
    # evaluation and serving agree). Makes the features blind to a global brightness or
    # contrast change, and so to defects that are only that.
    input_standardization: bool = False

    def __post_init__(self):
        if any(w <= 0 for w in self.head_widths):
            raise ValueError(f"head_widths must be positive, got {self.head_widths}")
        if self.head_embedding < 0:
            raise ValueError(f"head_embedding must be >= 0 (0: none), got {self.head_embedding}")
        if self.classifier_init not in CLASSIFIER_INITS:
            raise ValueError(f"classifier_init must be one of {CLASSIFIER_INITS}, got "
                             f"{self.classifier_init!r}")
        if self.head_init not in HEAD_INITS:
            raise ValueError(f"head_init must be one of {HEAD_INITS}, got {self.head_init!r}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation (Appendix A.1): 256 "epochs" of 256 steps, SGD 0.9, lr 0.03, cosine, L2 3e-5."""

    task: str = "3way"
    image_size: tuple[int, int] = (256, 256)
    batch_size: int = 96
    epochs: int = 256
    steps_per_epoch: int = 256
    learning_rate: float = 0.03
    # Steps of linear warm-up from 0 to ``learning_rate`` before the cosine cycle (0: none).
    warmup_steps: int = 0
    momentum: float = 0.9
    weight_decay: float = 3e-5
    seed: int = 0
    checkpoint_every: int = 256
    log_every: int = 16
    jit_compile: bool = False
    # Compute precision of the training step; variables, density, scores and metrics stay
    # float32 whatever this says.
    precision: str = "float32"
    # Augment inside the train step (on the accelerator) instead of in the tf.data pipeline.
    augment_on_device: bool = False
    # Compile the tf.data pipeline's augmentation with XLA (twice as fast on the host CPU).
    jit_augment: bool = True
    augment: AugmentConfig = AugmentConfig()
    # Two-stage fine-tuning (Appendix A.4): first ``head_epochs`` epochs train only the head
    # (backbone frozen) at ``head_learning_rate``, then ``epochs`` epochs train every layer at
    # ``learning_rate``, each stage with its own cosine cycle. ``freeze_batchnorm`` keeps the
    # backbone's batch norm layers in inference mode (statistics and scale fixed) while
    # training the backbone. epochs = head_epochs = 0: no training (pretrained features).
    head_epochs: int = 0
    head_learning_rate: float = 0.03
    freeze_batchnorm: bool = False

    def __post_init__(self):
        if self.task not in TASK_VIEWS:
            raise ValueError(f"task must be one of {sorted(TASK_VIEWS)}, got {self.task!r}")
        if len(self.image_size) != 2 or min(self.image_size) < 32:
            raise ValueError(f"image_size must be (height, width), each >= 32, got {self.image_size}")
        if self.task == "rotation" and self.image_size[0] != self.image_size[1]:
            raise ValueError(f"task 'rotation' needs a square image_size (a quarter turn swaps "
                             f"height and width), got {self.image_size[0]}x{self.image_size[1]}")
        if self.batch_size <= 0 or self.batch_size % self.num_views:
            raise ValueError(
                f"batch_size ({self.batch_size}) must be a positive multiple of the {self.num_views} "
                f"views of task {self.task!r} (the paper: 96 for 3way, 64 for binary tasks)")
        for name in ("steps_per_epoch", "checkpoint_every", "log_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.epochs < 0 or self.head_epochs < 0:
            raise ValueError(f"epochs and head_epochs must be >= 0 (both 0: no training), "
                             f"got {self.epochs} and {self.head_epochs}")
        if not 0 <= self.warmup_steps < max(self.epochs * self.steps_per_epoch, 1):
            raise ValueError(f"warmup_steps must be >= 0 and fewer than the "
                             f"{self.epochs * self.steps_per_epoch} steps of all layers, got "
                             f"{self.warmup_steps}")
        if self.head_learning_rate <= 0:
            raise ValueError(f"head_learning_rate must be positive, got {self.head_learning_rate}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.learning_rate <= 0 or self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ValueError("need learning_rate > 0, weight_decay >= 0 and momentum in [0, 1)")

    @property
    def num_views(self) -> int:
        return len(TASK_VIEWS[self.task])

    @property
    def num_classes(self) -> int:
        return self.num_views

    @property
    def sources_per_batch(self) -> int:
        """Source images per batch: each contributes one view per class."""
        return self.batch_size // self.num_views

    @property
    def head_steps(self) -> int:
        """Steps of the head-only stage (0 without one)."""
        return self.head_epochs * self.steps_per_epoch

    @property
    def total_steps(self) -> int:
        """Steps of both stages: head-only, then every layer."""
        return (self.head_epochs + self.epochs) * self.steps_per_epoch


# Model outputs a density can model; "level7" (EfficientNet's block 7, pooled) needs a backbone
# of LEVEL7_BACKBONES.
FEATURES: tuple[str, ...] = ("pooled", "embedding", "level7")
LEVEL7_BACKBONES: tuple[str, ...] = ("efficientnet_b4",)


@dataclasses.dataclass(frozen=True)
class DensityConfig:
    """The density estimator fitted on features of un-augmented training images: ``kind``
    (the flag ``--density``), on ``feature``, L2-normalised first if ``normalize_features``."""

    kind: str = "gde"
    feature: str = "pooled"
    normalize_features: bool = True
    kde_gamma: Optional[float] = None
    # The density on pre-augmented copies too: ``augment_copies`` colour-jittered copies (of
    # strength ``augment_jitter``: brightness, contrast, saturation, hue) of each training image
    # beside the image itself, so that the density is wide along lighting directions. 0: the
    # paper's fit on un-augmented images only.
    augment_copies: int = 0
    augment_jitter: tuple[float, float, float, float] = (0.1, 0.1, 0.1, 0.0)

    def __post_init__(self):
        if self.kind not in ("gde", "kde"):
            raise ValueError(f"density.kind must be 'gde' or 'kde', got {self.kind!r}")
        if self.augment_copies < 0:
            raise ValueError(f"density_augment_copies must be >= 0, got {self.augment_copies}")
        if len(self.augment_jitter) != 4 or min(self.augment_jitter) < 0 or (
                self.augment_jitter[3] > 0.5):
            raise ValueError("density_augment_jitter takes brightness, contrast, saturation, hue, "
                             f"each >= 0 and hue <= 0.5, got {self.augment_jitter}")
        if self.augment_copies and max(self.augment_jitter) == 0:
            raise ValueError(f"density_augment_copies={self.augment_copies} with no "
                             "density_augment_jitter: the copies would equal the images")
        if self.feature not in FEATURES:
            raise ValueError(f"feature must be one of {FEATURES}, got {self.feature!r}")


MODEL_TYPES: tuple[str, ...] = ("image", "patch")
# The ResNet-18 stage GradCAM explains; "auto": the deepest whose map is at least 8x8
# (cutpaste_tf.localization.gradcam.choose_layer).
GRADCAM_LAYERS: tuple[str, ...] = ("auto", "layer1", "layer2", "layer3", "layer4")


@dataclasses.dataclass(frozen=True)
class LocalizationConfig:
    """Defect localisation (Sec. 2.4, 4.2, Appendix A.5).

    ``model_type="image"`` trains on whole images (Table 1) and, where test masks exist, also
    reports GradCAM localisation; ``"patch"`` trains on ``train_patch_size`` crops (the paper:
    64x64 of 256x256) and scores every ``dense_patch_size`` patch at ``stride`` (32 and 4),
    ``dense_chunk`` patches per model call, upsampled with a Gaussian of ``upsample_sigma``
    pixels (default ``dense_patch_size / 4``). ``per_location`` chooses one GDE per grid
    location (True) or one shared GDE (False); None follows the category's ``aligned`` flag, as
    the paper does. ``gradcam_layer`` is the ResNet-18 stage whose map GradCAM uses, one of
    ``GRADCAM_LAYERS``. ``heatmaps``: write heatmap PNGs of the test images.
    """

    model_type: str = "image"
    train_patch_size: tuple[int, int] = (64, 64)
    dense_patch_size: int = 32
    stride: int = 4
    upsample_sigma: Optional[float] = None
    per_location: Optional[bool] = None
    dense_chunk: int = 512
    gradcam: bool = True
    heatmaps: bool = True
    gradcam_layer: str = "auto"

    def __post_init__(self):
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {self.model_type!r}")
        if self.gradcam_layer not in GRADCAM_LAYERS:
            raise ValueError(f"gradcam_layer must be one of {GRADCAM_LAYERS}, "
                             f"got {self.gradcam_layer!r}")
        if len(self.train_patch_size) != 2 or min(self.train_patch_size) < 32:
            raise ValueError("train_patch_size must be (height, width), each >= 32 (the smallest "
                             f"input ResNet-18 handles), got {self.train_patch_size}")
        if self.dense_patch_size < 16:
            raise ValueError(f"dense_patch_size must be >= 16, got {self.dense_patch_size}")
        if not 0 < self.stride <= self.dense_patch_size:
            raise ValueError(f"stride must be in [1, dense_patch_size={self.dense_patch_size}], "
                             f"got {self.stride}")
        if self.upsample_sigma is not None and not self.upsample_sigma > 0:
            raise ValueError(f"upsample_sigma must be positive, got {self.upsample_sigma}")
        if self.dense_chunk <= 0:
            raise ValueError(f"dense_chunk must be positive, got {self.dense_chunk}")

    @property
    def sigma_pixels(self) -> float:
        """The upsampling Gaussian's sigma in pixels: ``upsample_sigma`` or its default."""
        if self.upsample_sigma is not None:
            return float(self.upsample_sigma)
        return self.dense_patch_size / 4.0


@dataclasses.dataclass(frozen=True)
class ThresholdConfig:
    """How the exported decision threshold is set, from normal images only (see threshold.py).

    ``val_fraction`` of train/good is held out (split by the training seed) and excluded from
    training and the density fit; 0 keeps the paper's protocol (all images train) and falls back
    to ``folds``-fold out-of-fold scores of the training features.
    """

    val_fraction: float = 0.0
    quantile: float = 0.95
    folds: int = 10

    def __post_init__(self):
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if not 0.0 < self.quantile < 1.0:
            raise ValueError(f"threshold.quantile must be in (0, 1), got {self.quantile}")
        if self.folds < 2:
            raise ValueError(f"threshold.folds must be at least 2, got {self.folds}")


@dataclasses.dataclass(frozen=True)
class RobustnessConfig:
    """The drift stress test after evaluation (:mod:`cutpaste_tf.evaluation.robustness`): on
    or off, its shifts (``cutpaste_tf.ops.shifts.parse_shifts``: "default", "photometric" or
    kind:amount pairs) and the most normal images it shifts."""

    stress_test: bool = True
    shifts: str = "default"
    max_images: int = 200

    def __post_init__(self):
        if self.max_images < 2:
            raise ValueError(f"stress_max_images must be at least 2, got {self.max_images}")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything one category's train -> density -> evaluate -> export needs."""

    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    density: DensityConfig = DensityConfig()
    eval_batch_size: int = 32
    threshold: ThresholdConfig = ThresholdConfig()
    localization: LocalizationConfig = LocalizationConfig()
    robustness: RobustnessConfig = RobustnessConfig()
    # Ground-truth masks: a pixel is a defect when its value is at least this fraction of the
    # mask's full scale (255, 65535); see cutpaste_tf.data.masks for the whole rule.
    mask_threshold: float = 0.5

    def __post_init__(self):
        if not 0.0 < self.mask_threshold <= 1.0:
            raise ValueError(f"mask_threshold must be in (0, 1] (a fraction of the mask's full "
                             f"scale), got {self.mask_threshold}")
        if self.eval_batch_size <= 0:
            raise ValueError(f"eval_batch_size must be positive, got {self.eval_batch_size}")
        loc, size = self.localization, self.train.image_size
        backbone = self.model.backbone
        if self.density.feature == "level7" and backbone not in LEVEL7_BACKBONES:
            raise ValueError(f"feature 'level7' needs a backbone of {LEVEL7_BACKBONES}, "
                             f"got {backbone!r}")
        if loc.gradcam_layer != "auto" and backbone != "resnet18":
            raise ValueError(f"gradcam_layer {loc.gradcam_layer!r} is a ResNet-18 stage; "
                             f"backbone {backbone!r} takes only 'auto' (its last feature map)")
        if loc.model_type == "patch" and backbone != "resnet18":
            raise ValueError(f"patch models (model_type 'patch') are built on resnet18 only, "
                             f"got backbone {backbone!r}")
        if loc.model_type == "patch":
            if any(p > s for p, s in zip(loc.train_patch_size, size)):
                raise ValueError(f"train_patch_size {loc.train_patch_size} does not fit "
                                 f"image_size {size}")
            if loc.dense_patch_size > min(size):
                raise ValueError(f"dense_patch_size {loc.dense_patch_size} does not fit "
                                 f"image_size {size}")
            if self.train.augment_on_device:
                raise ValueError("augment_on_device is not supported for patch models yet "
                                 "(the crops are cut in the input pipeline)")
            crop = loc.train_patch_size
            if self.train.task == "rotation" and crop[0] != crop[1]:
                raise ValueError(f"task 'rotation' needs a square train_patch_size (a quarter "
                                 f"turn swaps height and width), got {crop[0]}x{crop[1]}")
            if self.density.kind != "gde":
                raise ValueError("patch models score with Gaussian densities (density.kind 'gde'), "
                                 f"got {self.density.kind!r}")


def to_dict(config: Any) -> dict:
    """A JSON-ready dict of a (nested) config dataclass."""
    return dataclasses.asdict(config)


def from_dict(cls: type, data: dict) -> Any:
    """Rebuilds a (nested) config dataclass from :func:`to_dict` output; unknown keys fail."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {unknown}")
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            value = from_dict(hint, value)
        elif typing.get_origin(hint) is tuple and value is not None:
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def to_json(config: Any) -> str:
    return json.dumps(to_dict(config), indent=2, sort_keys=True)
