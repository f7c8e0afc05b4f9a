"""The Python front door (``from cutpaste_tf import train, load``), over the same driver as the
launchers (:mod:`cutpaste_tf.driver`)::

    result = cutpaste_tf.train(data_dir="testdata", category="washer", model_dir="runs/washer",
                               task="cutpaste", image_size=64, batch_size=16, epochs=2)
    result.categories["washer"]["auroc"], result.exports["washer"], result.report
    scores = cutpaste_tf.load("runs/washer").score("testdata/washer/test")

Settings are the launchers' flags by name (docs/flags.md): a flagfile (``flagfile=``, read as
``--flagfile=`` reads it), then keyword arguments over it; the rest keep their defaults, the
paper's. Every check ``launch.train`` makes runs, in the same order, and a bad setting or input
raises ValueError (FileNotFoundError, ...) before anything is trained or written; a category
that fails later is in ``result.failures`` and the others go on. ``progress``: True prints what
``launch.train`` prints, False nothing (warnings still go to stderr), a callable gets each line.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, Callable, Iterator, Optional, Sequence, Union

from cutpaste_tf import driver
from cutpaste_tf import settings as settings_lib
from cutpaste_tf.driver import ExperimentResult, RunResult
from cutpaste_tf.serving.scoring import DriftWarning, Scorer, Scores, load

__all__ = ["train", "experiment", "load", "RunResult", "ExperimentResult", "Scorer", "Scores",
           "DriftWarning"]

Progress = Union[bool, Callable[[str], None]]
# The settings of launch.experiment besides those of a training run.
EXPERIMENT_NAMES = frozenset({"experiment_dir", "seeds", "tasks", "sweep"})


class _Lines(io.TextIOBase):
    """A text stream that hands each complete line to ``callback`` (without its newline)."""

    def __init__(self, callback: Callable[[str], None]):
        self.callback, self.pending = callback, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        lines = (self.pending + text).split("\n")
        self.pending = lines.pop()
        for line in lines:
            self.callback(line)
        return len(text)

    def flush(self) -> None:
        if self.pending:
            self.callback(self.pending)
            self.pending = ""


@contextlib.contextmanager
def _output(progress: Progress) -> Iterator[None]:
    """What the block prints: to stdout (True), nowhere (False), or to ``progress`` line by line."""
    if progress is True:
        yield
        return
    stream = _Lines(progress if callable(progress) else lambda line: None)
    with contextlib.redirect_stdout(stream):
        try:
            yield
        finally:
            stream.flush()


def _values(flagfile: Optional[str], overrides: dict[str, Any], progress: Progress,
            known: frozenset[str] = settings_lib.NAMES) -> dict[str, Any]:
    """The settings by name: the flagfile's, then ``overrides``; ``progress`` as the setting."""
    settings_lib.check_names(overrides, known=known)
    values: dict[str, Any] = settings_lib.read_flagfile(flagfile, known) if flagfile else {}
    values.update(overrides)
    values["progress"] = bool(progress)
    return values


def train(flagfile: Optional[str] = None, *, progress: Progress = True,
          **settings: Any) -> RunResult:
    """Trains, evaluates and exports each category of a run into ``model_dir`` (resuming what
    it holds), exactly as ``launch.train`` does, and returns what it wrote (:class:`RunResult`).

    ``flagfile``: a file of ``--name=value`` lines (``configs/quickstart.flags``); ``settings``:
    any of launch.train's flags by name (``data_dir="testdata"``, ``category="washer"``,
    ``model_dir="runs/x"``, ``epochs=2``), over the flagfile's.
    """
    values = _values(flagfile, settings, progress)
    run = settings_lib.from_values(values)
    with _output(progress):
        return driver.train(run, settings_lib.flagfile_text(values))


def experiment(flagfile: Optional[str] = None, *, experiment_dir: Optional[str] = None,
               seeds: Union[int, Sequence[int], None] = None, tasks: Sequence[str] = (),
               sweep: Optional[str] = None, progress: Progress = True,
               **settings: Any) -> ExperimentResult:
    """Runs every task (and value of ``sweep``, ``"learning_rate=0.01,0.03"``) with each seed
    (``seeds``: a count, default 5, or the seeds themselves), one model dir each under
    ``experiment_dir``, as ``launch.experiment`` does; then the tables over seeds and the
    ensemble (:class:`ExperimentResult`). A flagfile may set these four as well."""
    values = _values(flagfile, settings, progress, settings_lib.NAMES | EXPERIMENT_NAMES)
    own = {k: values.pop(k) for k in list(values) if k in EXPERIMENT_NAMES}
    for name, value in (("experiment_dir", experiment_dir), ("seeds", seeds),
                        ("tasks", tuple(tasks) or None), ("sweep", sweep)):
        if value is not None:
            own[name] = value
    seed_list, task_list = own.get("seeds", 5), own.get("tasks", ())
    seed_list = [seed_list] if isinstance(seed_list, int) else seed_list
    with _output(progress):
        return driver.experiment(
            values, own.get("experiment_dir"), [str(s) for s in _listed(seed_list)],
            _listed(task_list), own.get("sweep"), settings_lib.flagfile_text(values))


def _listed(value: Union[str, Sequence]) -> list:
    """A list setting: a sequence, or text with commas."""
    return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else list(
        value)
