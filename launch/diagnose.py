r"""Before training: does the proxy task's gradient reach the backbone, for each projection head?

    python -m launch.diagnose --flagfile=configs/3way_cpu.flags --data_dir=testdata \
        --category=fabric --heads=512,512x8 [--probe_batches=8]

For every head in ``--heads`` (widths joined by "-", "WxN" for N layers of W, "none" for no
hidden layer) it builds the run's model at initialisation (``--seed``), draws
``--probe_batches`` training batches of the run's task through the real pipeline, and prints
one JSON line: the backbone's gradient norm and the mean cosine between the batches'
gradients, with the true labels and with labels shuffled within each batch
(``cutpaste_tf/analysis/head_probe.py``). Writes all lines to ``--diagnose_output`` as JSON. Exit
codes: 0 done, 2 bad flags or data.
"""

from __future__ import annotations

from cutpaste_tf import files
from cutpaste_tf.analysis import head_probe
from cutpaste_tf.pipeline import inputs
from launch import configs, errors
from launch import flags as flag_defs

FLAGS = flag_defs.FLAGS
flag_defs.flags.DEFINE_list("heads", ["512", "512x8"], "Projection heads to probe: widths "
                            "joined by '-', 'WxN' for N layers of width W, 'none' for none.")
flag_defs.flags.DEFINE_integer("probe_batches", 8, "Independent training batches per head.")
flag_defs.flags.DEFINE_string("diagnose_output", "diagnose.json", "Where the lines go as JSON ('' for "
                              "nowhere).")


def main(argv: list[str]) -> None:
    flag_defs.start(argv, "launch.diagnose")
    with errors.reported(ValueError):  # DataError too
        data = inputs.measured_category(configs.input_spec())
        lines = head_probe.probe(configs.run_config(), data, FLAGS.heads, FLAGS.probe_batches)
    if FLAGS.diagnose_output:
        files.write_json(FLAGS.diagnose_output, lines)


if __name__ == "__main__":
    flag_defs.run(main)
