"""Command-line entry points (absl). Flags live here, never in the library."""

import os

# Keep TensorFlow's C++ start-up chatter (CUDA probing, CPU features) off the console.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# oneDNN's CPU kernels: TensorFlow's x86 wheel turns them on only where the CPU has AVX-512.
# They made the 3-way training step 1.61x faster at 128x128 on the development VM
# (docs/performance.md, "Side by side with the PyTorch reference").
# They touch CPU kernels only, so GPU and TPU runs are unaffected. TF_ENABLE_ONEDNN_OPTS=0 in
# the environment still turns them off.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
