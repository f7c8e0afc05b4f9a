"""One command that checks a machine with an accelerator and writes one JSON file.

    python -m launch.accelerator_check --check_output=accelerator_check.json
    python -m launch.accelerator_check --check_size=tiny --combinations=float32_xla_off_augment_on_device_off

With a GPU (under 8 minutes): training views/s at the configured size (default: the paper's
3-way, 256x256, batch 96) in float32 and mixed_bfloat16, XLA on and off, ``--augment_on_device``
on and off; the SavedModel's latency for one image against the bare network; a training run of
about two minutes on ``--data_dir`` (default: the shipped ``testdata/``), ``--category``
(default: washer), with its image AUROC. Without a GPU the same code runs at a tiny size and
the JSON says so (``mode``, ``shrunk``). Precision, XLA and ``--augment_on_device`` flags are
ignored: the check sweeps them. See ``cutpaste_tf/benchmark/accelerator_check.py`` for the JSON's keys.
Exit codes: 0 written (failed parts are recorded in it, under ``errors``), 2 bad flags.
"""

from __future__ import annotations

from cutpaste_tf import files
from cutpaste_tf.benchmark import accelerator_check as check
from launch import configs, errors
from launch import flags as flag_defs

FLAGS = flag_defs.FLAGS
flag_defs.flags.DEFINE_string("check_output", "accelerator_check.json", "Where the JSON goes.")
flag_defs.flags.DEFINE_enum("check_size", "auto", list(check.MODES), "auto: the configured "
                            "size with a GPU, tiny without; full or tiny to force one.")
flag_defs.flags.DEFINE_float("budget_s", 420.0, "Parts that would start after this many "
                             "seconds (less the training run's share) are skipped.")
flag_defs.flags.DEFINE_float("train_seconds", 100.0, "Seconds of training steps the training "
                             "run aims at (full size; the steps come from the measured rate).")
flag_defs.flags.DEFINE_list("combinations", list(check.COMBINATION_NAMES),
                            "Which precision / XLA / augment_on_device combinations to time.")


def main(argv: list[str]) -> None:
    flag_defs.start(argv, "launch.accelerator_check")
    try:
        config = configs.run_config()
        unknown = sorted(set(FLAGS.combinations) - set(check.COMBINATION_NAMES))
        if unknown:
            raise ValueError(f"--combinations: unknown {unknown}; choose from "
                             f"{', '.join(check.COMBINATION_NAMES)}")
        if FLAGS.budget_s <= 0 or FLAGS.train_seconds <= 0:
            raise ValueError("--budget_s and --train_seconds must be positive")
    except ValueError as e:  # recorded in the JSON too, then reported as every launcher does
        files.write_json(FLAGS.check_output, {"complete": False,
                                              "errors": {"flags": errors.to_flags(str(e))}})
        errors.fail(e)
    report = check.run_check(
        config, configs.input_spec(), FLAGS.check_output, mode=FLAGS.check_size,
        budget_s=FLAGS.budget_s, train_seconds=FLAGS.train_seconds,
        combinations=FLAGS.combinations)
    auroc = report.get("training_run", {}).get("image_auroc")
    print(f"mode {report['mode']}; {len(report['errors'])} error(s), "
          f"{len(report['skipped'])} skipped; training-run image AUROC "
          f"{'none' if auroc is None else f'{100 * auroc:.1f}%'}; written: {FLAGS.check_output}")


if __name__ == "__main__":
    flag_defs.run(main)
