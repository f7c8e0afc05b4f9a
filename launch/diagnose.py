r"""Before training: does the proxy task's gradient reach the backbone, for each projection head?

    python -m launch.diagnose --flagfile=configs/3way_cpu.flags --data_dir=testdata \
        --category=fabric --heads=512,512x8 [--probe_batches=8]

For every head in ``--heads`` (widths joined by "-", "WxN" for N layers of W, "none" for no
hidden layer) it builds the run's model at initialisation (``--seed``), draws
``--probe_batches`` training batches of the run's task through the real pipeline, and prints
one JSON line: the backbone's gradient norm and the mean cosine between the batches'
gradients, with the true labels and with labels shuffled within each batch
(``cutpaste_tf/training/diagnostics.py``). Writes all lines to ``--diagnose_output`` as JSON. Exit
codes: 0 done, 2 bad flags or data.
"""

from __future__ import annotations

import dataclasses
import json

from cutpaste_tf import files
from cutpaste_tf.data import train_dataset
from cutpaste_tf.pipeline import build, inputs
from cutpaste_tf.training import diagnostics
from launch import configs, errors
from launch import flags as flag_defs

FLAGS = flag_defs.FLAGS
flag_defs.flags.DEFINE_list("heads", ["512", "512x8"], "Projection heads to probe: widths "
                            "joined by '-', 'WxN' for N layers of width W, 'none' for none.")
flag_defs.flags.DEFINE_integer("probe_batches", 8, "Independent training batches per head.")
flag_defs.flags.DEFINE_string("diagnose_output", "diagnose.json", "Where the lines go as JSON ('' for "
                              "nowhere).")


def parse_head(text: str) -> tuple[int, ...]:
    """"512-256" -> (512, 256); "512x8" -> eight 512s; "none" -> ()."""
    if text == "none":
        return ()
    widths: list[int] = []
    for part in text.split("-"):
        width, times, count = part.partition("x")
        count = count if times else "1"
        if not (width.isdigit() and count.isdigit() and int(width) > 0 and int(count) > 0):
            raise ValueError(f"--heads: {text!r} is not widths joined by '-' ('512-256'), "
                             "'WxN' ('512x8') or 'none'")
        widths += [int(width)] * int(count)
    return tuple(widths)


def main(argv: list[str]) -> None:
    flag_defs.start(argv, "launch.diagnose")
    with errors.reported(ValueError):  # DataError too
        config = configs.run_config()
        heads = [(text, parse_head(text)) for text in FLAGS.heads]
        if FLAGS.probe_batches < 2:
            raise ValueError(f"--probe_batches must be at least 2, got {FLAGS.probe_batches}")
        data = inputs.resolve_categories(configs.input_spec())[0]
    tcfg = config.train
    batches = list(train_dataset(data.train_files, tcfg.image_size, tcfg.task, tcfg.batch_size,
                                 tcfg.seed, tcfg.augment, jit_augment=tcfg.jit_augment
                                 ).take(FLAGS.probe_batches))
    lines = []
    for text, widths in heads:
        probed = dataclasses.replace(config, model=dataclasses.replace(config.model,
                                                                       head_widths=widths))
        model = build.build_model(probed)
        line = {"category": data.name, "task": tcfg.task, "image_size": list(tcfg.image_size),
                "head": text, **diagnostics.gradient_coherence(model, batches, tcfg.seed)}
        print(json.dumps(line), flush=True)
        lines.append(line)
    if FLAGS.diagnose_output:
        files.write_json(FLAGS.diagnose_output, lines)


if __name__ == "__main__":
    flag_defs.run(main)
