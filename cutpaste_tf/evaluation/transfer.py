"""Transfer-learning results (Sec. 4.3, Table 3): detection AUROC of an EfficientNet's pooled and
level-7 features, pretrained only or fine-tuned by CutPaste. The table beside the paper's numbers
is :func:`cutpaste_tf.reporting.tables.table3_markdown`."""

from __future__ import annotations

import dataclasses
from typing import Mapping

import keras
import numpy as np

from cutpaste_tf.config import RunConfig
from cutpaste_tf.data import CategoryData
from cutpaste_tf.evaluation import evaluate

# Our feature names for Table 3's "Pool" and "Level-7" columns.
TABLE3_FEATURES: dict[str, str] = {"pool": "pooled", "level7": "level7"}


def stage_name(config: RunConfig) -> str:
    """Table 3's column for a run: "pretrain" without training steps, else "finetune"."""
    return "pretrain" if config.train.total_steps == 0 else "finetune"


def feature_aurocs(model: keras.Model, data: CategoryData, config: RunConfig,
                   known: Mapping[str, float]) -> dict[str, float]:
    """Test AUROC of a GDE (``config.density``) on each Table 3 feature of ``model``, keyed
    "pool" / "level7"; ``known`` (our feature name -> AUROC) skips features already scored.

    Each density is fitted on the training images only, exactly as for the run's own feature.
    """
    out = {}
    size, batch = config.train.image_size, config.eval_batch_size
    for column, feature in TABLE3_FEATURES.items():
        if feature in known:
            out[column] = float(known[feature])
            continue
        dcfg = dataclasses.replace(config.density, feature=feature)
        estimator = evaluate.fit_density(model, data, size, dcfg, batch)
        scores = evaluate.score_images(model, estimator, data.test_files, size, feature, batch,
                                       category=data.name)
        out[column] = float(evaluate.evaluate(np.asarray(scores), data)["auroc"])
    return out
