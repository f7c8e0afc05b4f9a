"""Command-line entry points (absl). Flags live here, never in the library.

Importing this package (``python -m launch.<name>`` does so first) sets up the console of every
launcher: stdout flushed at each line, so that ``> log 2>&1`` keeps the order of stdout and stderr
lines, and TensorFlow's C++ start-up lines kept off it (below).
"""

import os
import re
import sys
import tempfile

# oneDNN's CPU kernels: TensorFlow's x86 wheel turns them on only where the CPU has AVX-512.
# They made the 3-way training step 1.61x faster at 128x128 on the development VM
# (docs/performance.md, "Side by side with the PyTorch reference").
# They touch CPU kernels only, so GPU and TPU runs are unaffected. TF_ENABLE_ONEDNN_OPTS=0 in
# the environment still turns them off.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

# What TensorFlow's C++ side prints on every start whatever TF_CPP_MIN_LOG_LEVEL says (its
# logging is not initialised yet): notes on oneDNN, CPU instructions and CUDA libraries, and
# "failed call to cuInit" on a machine without a GPU. The start line names the device instead
# (and --require_accelerator refuses a CPU); every other line is kept.
STARTUP_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|oneDNN custom operations are on"
    r"|Could not find cuda drivers on your machine"
    r"|failed call to cuInit"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|^To enable the following instructions: .*rebuild TensorFlow"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered"
    r"|TF-TRT Warning: Could not find TensorRT")


def _line_buffered_stdout() -> None:
    try:
        sys.stdout.reconfigure(line_buffering=True)
    except (AttributeError, ValueError, OSError):  # not a text stream that can change
        pass


def _import_tensorflow_quietly() -> None:
    """Imports TensorFlow and lists its devices (where CUDA is probed) with file descriptor 2
    caught in a temporary file, then writes back every caught line but the start-up noise.

    Only when the user has not set TF_CPP_MIN_LOG_LEVEL: then it is set to 2 (warnings and
    information off). A user who sets it (0 shows everything) sees TensorFlow's output as it is.
    """
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or "tensorflow" in sys.modules:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):  # no stderr descriptor to redirect
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            import tensorflow as tf
            tf.config.list_physical_devices()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            text = caught.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines(keepends=True)
                    if not STARTUP_NOISE.search(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


_line_buffered_stdout()
_import_tensorflow_quietly()
