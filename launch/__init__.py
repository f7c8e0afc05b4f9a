"""Command-line entry points (absl). Flags live here, never in the library."""

import os

# Keep TensorFlow's C++ start-up chatter (CUDA probing, CPU features) off the console.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
