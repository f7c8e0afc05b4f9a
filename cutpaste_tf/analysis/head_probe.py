"""Before training: does the proxy task's gradient reach the backbone, for each projection head
(``launch.diagnose``)? Each head's model is built at initialisation, and the same training
batches of the run's task, drawn through the real pipeline, measure the backbone's gradient
norm and the agreement of the batches' gradients, with true and with shuffled labels
(:func:`cutpaste_tf.training.diagnostics.gradient_coherence`)."""

from __future__ import annotations

import dataclasses
import json
from typing import Sequence

from cutpaste_tf.config import RunConfig
from cutpaste_tf.data import CategoryData, train_dataset
from cutpaste_tf.pipeline import build
from cutpaste_tf.training import diagnostics


def parse_head(text: str) -> tuple[int, ...]:
    """"512-256" -> (512, 256); "512x8" -> eight 512s; "none" -> ()."""
    if text == "none":
        return ()
    widths: list[int] = []
    for part in text.split("-"):
        width, times, count = part.partition("x")
        count = count if times else "1"
        if not (width.isdigit() and count.isdigit() and int(width) > 0 and int(count) > 0):
            raise ValueError(f"heads={text}: not widths joined by '-' ('512-256'), 'WxN' "
                             "('512x8') or 'none'")
        widths += [int(width)] * int(count)
    return tuple(widths)


def probe(config: RunConfig, data: CategoryData, heads: Sequence[str],
          batches: int = 8) -> list[dict]:
    """One line per head of ``heads`` (:func:`parse_head`'s text), each printed as JSON as it
    comes: the category, task, size, head and the gradient figures, on ``batches`` training
    batches of ``data`` (the same for every head). Bad heads raise before anything is built."""
    widths = [(text, parse_head(text)) for text in heads]
    if batches < 2:
        raise ValueError(f"probe_batches must be at least 2, got {batches}")
    tcfg = config.train
    drawn = list(train_dataset(data.train_files, tcfg.image_size, tcfg.task, tcfg.batch_size,
                               tcfg.seed, tcfg.augment, jit_augment=tcfg.jit_augment
                               ).take(batches))
    lines = []
    for text, head in widths:
        probed = dataclasses.replace(config, model=dataclasses.replace(config.model,
                                                                       head_widths=head))
        line = {"category": data.name, "task": tcfg.task, "image_size": list(tcfg.image_size),
                "head": text, **diagnostics.gradient_coherence(build.build_model(probed), drawn,
                                                               tcfg.seed)}
        print(json.dumps(line), flush=True)
        lines.append(line)
    return lines
