r"""Measures the speed of every stage on this machine; prints the figures and writes them as JSON.

    python -m launch.benchmark --flagfile=configs/3way.flags --data_dir=testdata --steps=3
    python -m launch.benchmark --flagfile=configs/quickstart.flags --steps=20
    python -m launch.benchmark --flagfile=configs/3way.flags --sections=tasks --steps=5
    python -m launch.benchmark --flagfile=configs/patch_3way.flags --data_dir=testdata \
        --sections=dense --per_location=true --steps=1

Figures (all at ``--image_size`` with ``--batch_size`` views of ``--task``), by ``--sections``:

- ``augment``: augmentation throughput in views/s: through the real ``tf.data`` pipeline
  (decode once, cache, shuffle, augment, batch) on ``--data_dir``'s ``--category``; as one
  compiled graph (what the pipeline's map runs); and XLA-compiled (what
  ``--augment_on_device`` runs inside the train step);
- ``train``: training throughput in images/s (views per second) with constant in-memory
  tensors and with the real pipeline; their ratio says whether the input starves the model
  (1.0: it does not);
- ``serve``: SavedModel latency: p50 and p95 milliseconds for one image (float pixels in, and
  encoded bytes in) against the bare network's p50 (the Keras model and the density score as
  one in-process ``tf.function`` on the decoded image), their ratios, all timed in alternation
  on the same image (the first test image of ``--category`` at ``--image_size`` when the run
  indexes one, i.e. with ``--data_dir`` or the augment / train sections; else a synthetic one),
  and images/s for a batch of 32;
- ``tasks``: views/s of ``make_views`` alone for each of ``--bench_tasks`` (default: CutPaste
  and the baseline tasks) on ``--bench_sources`` random source images, as a compiled graph and
  XLA-compiled (rotation is left out at non-square sizes);
- ``dense``: seconds per image of dense patch scoring (patch embeddings, the Gaussian density per
  location or shared, receptive-field upsampling) at ``--dense_patch_size`` / ``--stride``, and
  the embedding part alone;

and always the hardware and software they were measured on.
"""

from __future__ import annotations

from cutpaste_tf.benchmark import sections
from launch import configs, errors
from launch import flags as flag_defs

FLAGS = flag_defs.FLAGS
flag_defs.flags.DEFINE_integer("steps", 10, "Timed calls per measurement (after one warm-up).")
flag_defs.flags.DEFINE_string("output", "benchmark.json", "Where the figures go as JSON "
                              "('' for nowhere).")
flag_defs.flags.DEFINE_list("sections", ["augment", "train", "serve", "dense"],
                            "Which figures to measure: augment, train, serve, dense, tasks.")
flag_defs.flags.DEFINE_list("bench_tasks", list(sections.BENCH_TASKS),
                            "--sections=tasks: the proxy tasks whose views are timed.")
flag_defs.flags.DEFINE_integer("bench_sources", 32, "--sections=tasks: source images per call.")


def main(argv: list[str]) -> None:
    flag_defs.start(argv, "launch.benchmark")
    with errors.reported(ValueError):
        figures = sections.measure(configs.run_config(), configs.input_spec(), FLAGS.sections,
                                   FLAGS.steps, FLAGS.bench_tasks, FLAGS.bench_sources,
                                   FLAGS.output)
    for key, value in figures.items():
        print(f"{key:32s} {value}")
    if FLAGS.output:
        print(f"Written: {FLAGS.output}")


if __name__ == "__main__":
    flag_defs.run(main)
