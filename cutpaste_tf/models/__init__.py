"""Models: ResNet-18 and EfficientNet-B4 backbones, projection head, the full CutPaste network."""

from cutpaste_tf.models.cutpaste_net import build_cutpaste_model
from cutpaste_tf.models.efficientnet import efficientnet_b4, efficientnet_scaling
from cutpaste_tf.models.heads import projection_head
from cutpaste_tf.models.registry import BACKBONES, BackboneSpec
from cutpaste_tf.models.resnet import imagenet_normalization, resnet18

__all__ = [
    "BACKBONES",
    "BackboneSpec",
    "build_cutpaste_model",
    "efficientnet_b4",
    "efficientnet_scaling",
    "imagenet_normalization",
    "projection_head",
    "resnet18",
]
