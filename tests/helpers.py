"""Helpers shared by the tests: position-coded images, a small copy of testdata, and launchers
run as a user runs them (a fresh ``python -m launch.<name>``)."""

import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The environment of a launcher run in a fresh process: on the CPU, without TensorFlow's C++ logs.
CPU_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
# The quickstart (configs/quickstart.flags, binary CutPaste) on the washer category, shrunk to
# seconds: 32x32 images, 3 steps, one checkpoint, a 16-wide head, 15 of the 60 training images
# held out for the threshold. tests/conftest.py's tiny_run is one run of it.
TINY_TRAIN = ["--flagfile=configs/quickstart.flags", "--category=washer", "--image_size=32",
              "--batch_size=6", "--epochs=1", "--steps_per_epoch=3", "--checkpoint_every=3",
              "--log_every=1", "--head_widths=16", "--progress=false", "--val_fraction=0.25"]


def coord_images(batch: int, height: int, width: int) -> np.ndarray:
    """Float32 images whose pixel (b, y, x) holds (y / (H - 1), x / (W - 1), (b + 1) / (B + 1)):
    every pixel is distinct, so an op's output shows where each value came from."""
    img = np.zeros((batch, height, width, 3), np.float32)
    img[..., 0] = (np.arange(height, dtype=np.float32) / (height - 1))[:, None]
    img[..., 1] = (np.arange(width, dtype=np.float32) / (width - 1))[None, :]
    img[..., 2] = ((np.arange(batch, dtype=np.float32) + 1) / (batch + 1))[:, None, None]
    return img


def copy_washer(tmp_path, scratch: int):
    """A copy of testdata's washer under ``tmp_path/data``: 3 train and 2 good test images, and
    the first ``scratch`` scratch images with their masks; returns the data root."""
    source = ROOT / "testdata" / "washer"
    base = tmp_path / "data" / "washer"
    copies = [f"train/good/00{i}.png" for i in range(3)] + [f"test/good/00{i}.png" for i in range(2)]
    copies += [f"test/scratch/00{i}.png" for i in range(scratch)]
    copies += [f"ground_truth/scratch/00{i}_mask.png" for i in range(scratch)]
    for rel in copies:
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source / rel, base / rel)
    return tmp_path / "data"


def run_module(module: str, *args: str, timeout: float = 600,
               env: "dict[str, str] | None" = None) -> subprocess.CompletedProcess:
    """``python -m <module> <args>`` in a fresh process from the repository root, on the CPU,
    with its output captured; ``timeout`` only guards against a hang."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT,
                          env={**CPU_ENV, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def train_run(model_dir: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m launch.train <args> --model_dir=<model_dir>``, which must succeed."""
    result = run_module("launch.train", *args, f"--model_dir={model_dir}", timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result
