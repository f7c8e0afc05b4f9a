"""EfficientNet-B4 backbone (Keras' application) for transfer learning (Sec. 4.3, Appendix A.4).

The pipeline feeds images in [0, 1]. Keras' EfficientNet rescales inside the model: its first
layers are ``Rescaling(1/255)`` and a ``Normalization`` that holds the ImageNet mean and
variance (loaded with the weights). So :func:`efficientnet_scaling` only maps [0, 1] to
[0, 255]; nothing else normalises the images.

One structure for every weight source: the network is always built with ``weights=None``.
Keras builds its ImageNet model with one more layer, a ``Rescaling`` by ``1/sqrt(stddev)``
after the normalisation; here that factor is folded into the normalisation's variance after
the ImageNet weights are loaded (``(x - m) / sqrt(v) / sqrt(s) == (x - m) / sqrt(v * s)``). A
backbone saved with ``save_weights`` therefore reloads into a fresh one with equal outputs,
whether it started from ImageNet or from random weights.

Weight sources (``weights``):

- ``None``: random initialisation (Keras' initialisers; the normalisation is the identity);
- ``"imagenet"``: Keras' ``efficientnetb4_notop.h5``, from Keras' cache (``~/.keras/models``,
  or ``$KERAS_HOME/models``) or downloaded into it;
- a path ending in ``.weights.h5``: weights saved from this backbone (``save_weights``);
- any other ``.h5`` path: a local copy of Keras' ImageNet file (``efficientnetb4_notop.h5``).
"""

from __future__ import annotations

from typing import Optional, Sequence

import keras
from keras import layers
from keras.src.applications import efficientnet as keras_efficientnet

IMAGENET_FILE = "efficientnetb4_notop.h5"
# The level-7 feature: the output of EfficientNet's 7th (last) block group, before top_conv.
LEVEL7_LAYER_PREFIX = "block7"


class WeightsError(ValueError):
    """Backbone weights that cannot be found, fetched or loaded (checked before building by
    :func:`cutpaste_tf.models.cutpaste_net.check_backbone_weights`)."""


def efficientnet_scaling(name: str = "efficientnet_scaling") -> layers.Layer:
    """[0, 1] images -> [0, 255], the range Keras' EfficientNet expects (it normalises inside)."""
    return layers.Rescaling(255.0, name=name)


def imagenet_weights_file() -> str:
    """The local path of Keras' ImageNet ``efficientnetb4_notop.h5``: from Keras' cache, or
    downloaded into it (checked against Keras' hash). Raises WeightsError when neither works."""
    origin = keras_efficientnet.BASE_WEIGHTS_PATH + IMAGENET_FILE
    try:
        return keras.utils.get_file(IMAGENET_FILE, origin, cache_subdir="models",
                                    file_hash=keras_efficientnet.WEIGHTS_HASHES["b4"][1])
    except Exception as e:  # noqa: BLE001 -- any failure here means: no weights file
        raise WeightsError(
            f"backbone_weights=imagenet: could not download {origin} ({type(e).__name__}: "
            f"{e}). Without internet access, copy {IMAGENET_FILE} into Keras' cache "
            f"(~/.keras/models/, or $KERAS_HOME/models/) or pass its path: "
            f"backbone_weights=/path/to/{IMAGENET_FILE}") from None


def _short(error: Exception, limit: int = 300) -> str:
    """An exception's message cut to ``limit`` characters (Keras lists every layer)."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[:limit] + " ..."


def _fold_imagenet_rescaling(model: keras.Model) -> None:
    """Folds Keras' extra ImageNet ``Rescaling(1/sqrt(stddev))`` into the normalisation."""
    norm = next(layer for layer in model.layers if isinstance(layer, layers.Normalization))
    stddev = keras.ops.convert_to_tensor(keras_efficientnet.IMAGENET_STDDEV_RGB, "float32")
    norm.adapt_variance.assign(norm.adapt_variance * stddev)
    norm.finalize_state()


def efficientnet_b4(input_shape: Sequence[int | None] = (None, None, 3),
                    name: str = "efficientnet_b4", weights: Optional[str] = None
                    ) -> keras.Model:
    """EfficientNet-B4 without its top: [0, 255] images -> {"feature_map": the 1792-channel
    stride-32 map after top_conv, "level7": the 448-channel output of block group 7}."""
    path = imagenet_weights_file() if weights == "imagenet" else weights  # fails before building
    base = keras.applications.EfficientNetB4(include_top=False, weights=None,
                                             input_shape=tuple(input_shape))
    level7 = [layer for layer in base.layers if layer.name.startswith(LEVEL7_LAYER_PREFIX)][-1]
    model = keras.Model(base.inputs, {"feature_map": base.output, "level7": level7.output},
                        name=name)
    if path and not path.endswith(".weights.h5"):  # Keras' ImageNet file
        try:
            base.load_weights(path)  # by layer order, as Keras loads its own file
        except Exception as e:  # noqa: BLE001
            raise WeightsError(f"backbone_weights={weights}: {path} is not Keras' "
                               f"EfficientNet-B4 ImageNet file ({type(e).__name__}: {_short(e)})") from None
        _fold_imagenet_rescaling(base)
    elif weights:
        try:
            model.load_weights(weights)
        except Exception as e:  # noqa: BLE001
            raise WeightsError(f"backbone_weights={weights}: could not load it into "
                               f"EfficientNet-B4 ({type(e).__name__}: {_short(e)})") from None
    return model
