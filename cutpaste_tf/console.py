"""What a run prints while it works, readable by line-based tools: training progress, and a
start and an end line (with its duration) for every later stage.

On a terminal, training shows Keras' progress bar. Anywhere else (``> log 2>&1``, a pipe, a
Cloud job's or ``kubectl logs``' output) Keras would still redraw its bar with carriage returns,
backspaces and colour codes on one endless line, because it turns its dynamic display on
whenever ``posix`` is imported. There, :class:`Progress` prints one plain line every
``every_s`` seconds and at the last step instead::

    [bottle] step 150/600 (25%) loss 0.812 acc 0.71 (normal 0.93 / cutpaste 0.66 / scar 0.54) 210 views/s ETA 5m10s
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Iterator, Optional, Sequence, TextIO

import keras
import numpy as np


LONG_RUN_S = 24 * 3600.0  # a remaining time past this is pointed out once


def duration(seconds: float) -> str:
    """``seconds`` for a person: ``0.4s``, ``42s``, ``5m10s``, ``2h05m``."""
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def progress_line(category: str, done: int, total: int, loss: float, accuracy: float,
                  per_class: Sequence[float], names: Sequence[str], views_per_s: float,
                  eta_s: Optional[float]) -> str:
    """One plain progress line (see the module docstring); no ETA at the last step."""
    classes = " / ".join(f"{n} {a:.2f}" for n, a in zip(names, per_class))
    eta = f" ETA {duration(eta_s)}" if eta_s is not None and done < total else ""
    return (f"[{category}] step {done}/{total} ({100 * done // max(total, 1)}%) loss {loss:.3f} "
            f"acc {accuracy:.2f} ({classes}) {views_per_s:.0f} views/s{eta}")


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal (False when it cannot tell)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """The training loop's progress display: Keras' bar on a terminal, else plain lines.

    Args:
      category: the name in front of each line.
      total: the run's last step.
      start: the step the run starts (or resumes) at.
      names: the proxy task's classes, in label order.
      batch_size: views per step (all replicas), for the views/s figure.
      every_s: seconds between plain lines (0: every step); the last step always prints one.
      enabled: False prints nothing.
      stream: where to print (default: ``sys.stdout`` when printing).
    """

    def __init__(self, category: str, total: int, start: int, names: Sequence[str],
                 batch_size: int, every_s: float = 30.0, enabled: bool = True,
                 stream: Optional[TextIO] = None):
        self.category, self.total, self.names = category, total, tuple(names)
        self.batch_size, self.every_s, self.enabled = batch_size, every_s, enabled and total > 0
        self._stream = stream
        self.bar = None
        if self.enabled and is_terminal(self.stream):
            self.bar = keras.utils.Progbar(total, stateful_metrics=["loss", "accuracy", "lr"])
            self.bar.update(start)
        self._steps: list[dict] = []  # each step's metrics since the last line
        self._tic, self._tic_step = time.perf_counter(), start
        self._lines, self._warned = 0, False

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    def step(self, done: int, metrics: dict) -> None:
        """Records step ``done``'s metrics (``loss``, ``accuracy``, ``accuracy_per_class``);
        prints a plain line when one is due (not on a terminal)."""
        if not self.enabled or self.bar is not None:
            return
        self._steps.append(metrics)
        now = time.perf_counter()
        if done < self.total and now - self._tic < self.every_s:
            return
        steps, self._steps = self._steps, []
        per_class = np.mean([np.asarray(m["accuracy_per_class"]) for m in steps], axis=0)
        loss = float(np.mean([np.asarray(m["loss"]) for m in steps]))
        accuracy = float(np.mean([np.asarray(m["accuracy"]) for m in steps]))
        rate = (done - self._tic_step) / max(now - self._tic, 1e-9)
        self._tic, self._tic_step = now, done
        eta = (self.total - done) / max(rate, 1e-9)
        print(progress_line(self.category, done, self.total, loss, accuracy,
                            [float(a) for a in np.atleast_1d(per_class)], self.names,
                            rate * self.batch_size, eta),
              file=self.stream, flush=True)
        self._lines += 1
        # The first line's rate includes building the graph; from the second on it is the
        # machine's. A run of days is usually the paper's protocol on a CPU by mistake.
        if self._lines >= 2 and eta > LONG_RUN_S and not self._warned:
            self._warned = True
            print(f"[{self.category}] note: at this rate the other {self.total - done:,} steps "
                  f"take {duration(eta)}; is this the machine you meant (the start line names "
                  "the device; --require_accelerator refuses a CPU)?", file=self.stream,
                  flush=True)

    def log(self, done: int, loss: float, accuracy: float, lr: float) -> None:
        """The metrics of a TensorBoard log, shown on the terminal's bar."""
        if self.bar is not None:
            self.bar.update(done, [("loss", loss), ("accuracy", accuracy), ("lr", lr)])


@contextlib.contextmanager
def stage(where: str, what: str, verbose: bool = True,
          stream: Optional[TextIO] = None) -> Iterator[None]:
    """Prints ``<where><what>: started`` before the block and ``<where><what>: done in
    <duration>`` after it (nothing when ``verbose`` is False; no end line when it raises)."""
    tic = time.perf_counter()
    if verbose:
        print(f"{where}{what}: started", file=stream or sys.stdout, flush=True)
    yield
    if verbose:
        print(f"{where}{what}: done in {duration(time.perf_counter() - tic)}",
              file=stream or sys.stdout, flush=True)
