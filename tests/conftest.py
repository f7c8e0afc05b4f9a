"""Shared test setup. This folder is on sys.path, so tests import ``helpers`` by name. Fixtures:

- ``tiny_run`` (session): one finished tiny run of launch.train, shared by the launch, analysis
  and mask tests; a test that changes a run works on ``tiny_run.copy(tmp_path)``.
- ``dark_run`` (session): a tiny run whose test normals were captured darker (drift), without
  held-out images.
- ``parse_flags``: parses a launcher's command line into absl's FLAGS as ``app.run`` does.
- ``run_launcher``: parses a command line and calls the launcher's ``main`` in this process,
  returning its exit status (no fresh TensorFlow per call).
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import shutil
from types import ModuleType
from typing import Callable, Iterator

import pytest
from helpers import ROOT, TINY_TRAIN, train_run


@dataclasses.dataclass(frozen=True)
class TinyRun:
    """A finished ``launch.train`` run of helpers.TINY_TRAIN on testdata's washer category."""

    model_dir: pathlib.Path
    stdout: str  # what the run printed
    stderr: str = ""  # its warnings
    category: str = "washer"

    @functools.cached_property
    def config(self):
        """The run's RunConfig, read back from its config.json."""
        from cutpaste_tf import rundir
        return rundir.load_run_config(str(self.model_dir))

    @functools.cached_property
    def model_and_density(self):
        """(float32 model with the trained weights, fitted density), loaded once per session."""
        from cutpaste_tf.pipeline import trained
        return trained.load_trained(str(self.model_dir), self.category, self.config)

    def copy(self, tmp_path: pathlib.Path) -> pathlib.Path:
        """A copy of the whole model dir at ``tmp_path/model``, for a test that changes it."""
        return pathlib.Path(shutil.copytree(self.model_dir, tmp_path / "model"))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> TinyRun:
    """The run, trained once per session (per xdist worker): the quickstart path, shrunk."""
    model_dir = tmp_path_factory.mktemp("tiny_run") / "model"
    result = train_run(model_dir, *TINY_TRAIN)
    return TinyRun(model_dir, result.stdout, result.stderr)


def darkened_washer(root: pathlib.Path, factor: float = 0.8) -> pathlib.Path:
    """testdata's washer under ``root/data`` with its normal test images ``factor`` times as
    bright (a lamp that aged between the training and the test capture)."""
    import numpy as np
    from PIL import Image

    data = root / "data"
    shutil.copytree(ROOT / "testdata" / "washer", data / "washer")
    shutil.copy(ROOT / "testdata" / "categories.json", data / "categories.json")
    for path in sorted((data / "washer" / "test" / "good").glob("*.png")):
        pixels = np.asarray(Image.open(path).convert("RGB"), np.float32) * factor
        Image.fromarray(np.round(pixels).astype(np.uint8)).save(path)
    return data


@pytest.fixture(scope="session")
def dark_run(tmp_path_factory):
    """(model dir, data root, the CompletedProcess) of a tiny run on a washer whose test normals
    are 0.8 times as bright, without held-out images (out-of-fold threshold and stress test)."""
    root = tmp_path_factory.mktemp("dark")
    data = darkened_washer(root)
    result = train_run(root / "model", *TINY_TRAIN, f"--data_dir={data}", "--val_fraction=0")
    return root / "model", data, result


@pytest.fixture
def parse_flags(monkeypatch) -> Iterator[Callable[..., None]]:
    """``parse_flags(*args)``: absl's FLAGS set from ``args`` alone (defaults elsewhere), as a
    launcher's ``app.run`` parses them, from the repository root (configs/ and testdata/ are
    relative paths there). Every flag is back to its default, unparsed, after the test."""
    from absl import flags

    monkeypatch.chdir(ROOT)

    def parse(*args) -> None:
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["launcher", *map(str, args)])

    yield parse
    flags.FLAGS.unparse_flags()


@pytest.fixture
def run_launcher(parse_flags) -> Callable[..., "int | str | None"]:
    """``run_launcher(module, *args)``: the launcher module's ``main`` run in this process on
    ``args``; returns its exit status (0 when ``main`` returns). Read what it printed with
    ``capsys``."""
    def run(module: ModuleType, *args) -> "int | str | None":
        parse_flags(*args)
        try:
            module.main(["launcher"])
        except SystemExit as e:
            return e.code
        return 0

    return run
