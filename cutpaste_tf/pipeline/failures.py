"""Categories that fail stay failed alone: the run records why and goes on with the others.

A category fails when an error leaves :func:`cutpaste_tf.pipeline.runner.run_category` (a
:class:`~cutpaste_tf.training.train.TrainingError`, an
:class:`~cutpaste_tf.evaluation.evaluate.EvaluationError`, a data error met only when the
category is reached, an ``OSError`` writing its files, ...). :func:`attempt` catches it, writes
``<model_dir>/<category>/failed.json`` (the stage, the error's type, its first line and the
traceback) and removes the category's ``results.json`` (the attempt may have rewritten the
density, threshold and scores it described). The next successful attempt removes
``failed.json``. ``KeyboardInterrupt`` and ``SystemExit`` are never caught.

The run's summary (:mod:`cutpaste_tf.reporting.summary`) lists every category with a
``failed.json`` (:func:`collect`, :func:`markdown`); the launchers end with
:func:`summary_line` and exit status 1.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import traceback
from typing import Callable, Iterator, Mapping, Optional

import tensorflow as tf

from cutpaste_tf import files, rundir

# The attribute :func:`stage` sets on an error that leaves its block.
_STAGE = "cutpaste_stage"
# The longest one-line message kept (the traceback in failed.json has all of it).
MESSAGE_CHARS = 300
# Errors that describe bad input or a failed computation in their message; any other (a
# TypeError, a KeyError, ...) is likely a bug, and its traceback is worth printing.
EXPECTED = (ValueError, RuntimeError, OSError, ArithmeticError, tf.errors.OpError)
# What TensorFlow puts before the cause of an error raised in a tf.data pipeline's function.
_TF_FUNCTION = re.compile(r"\{\{function_node [^}]*\}\}\s*")
_TF_ITERATOR = re.compile(r"^Error in user-defined function passed to .*? transformation "
                          r"with iterator: \S+: ")


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Marks an error that leaves the block with the stage ``name`` ("training", "evaluation",
    ...), for :func:`describe`; an inner block's mark is kept."""
    try:
        yield
    except Exception as e:
        if not hasattr(e, _STAGE):
            try:
                setattr(e, _STAGE, name)
            except (AttributeError, TypeError):  # an error type that takes no attributes
                pass
        raise


def one_line(text: str, limit: int = MESSAGE_CHARS) -> str:
    """The first non-empty line of ``text``, cut to ``limit`` characters (with "…")."""
    line = next((t.strip() for t in text.splitlines() if t.strip()), "")
    return line if len(line) <= limit else line[:limit - 1] + "…"


def plain(message: str) -> str:
    """``message`` without what TensorFlow wraps a tf.data error in: ``{{function_node ...}}``
    and ``Error in user-defined function passed to ... with iterator: <path>:``, so that its
    first line is the cause (``Invalid PNG data, size 200``)."""
    message = _TF_FUNCTION.sub("", message)
    return _TF_ITERATOR.sub("", message.lstrip())


def describe(error: BaseException) -> dict:
    """``{"stage", "error", "message"}``: where the category failed, the error's type name
    and its message in one line (the type's name when it has none)."""
    return {"stage": getattr(error, _STAGE, "unknown"), "error": type(error).__name__,
            "message": one_line(plain(str(error))) or type(error).__name__}


def announce(where: str, error: BaseException,
             words: Callable[[str], str] = lambda text: text) -> dict:
    """Says on stderr that a category failed while the run goes on: ``error: <where><stage>:
    <type>: <message>; going on with the others`` (and the traceback, for an error that is
    likely a bug rather than bad input); returns the failure's description (:func:`describe`).
    ``words`` rewrites the message for its reader (the launchers name flags)."""
    failure = describe(error)
    if not isinstance(error, EXPECTED):
        traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
    print(f"error: {where}{failure['stage']}: {failure['error']}: "
          f"{words(failure['message'])}; going on with the others", file=sys.stderr, flush=True)
    return failure


def phrase(category: str, failure: Mapping) -> str:
    """``screw (training: TrainingError: loss is NaN at step 120)``."""
    return f"{category} ({failure['stage']}: {failure['error']}: {failure['message']})"


def attempt(run: Callable[[], object], model_dir: str, category: str, record: bool = True,
            stop: tuple[type[BaseException], ...] = ()) -> Optional[Exception]:
    """Runs ``run()`` (one category of the run in ``model_dir``). Returns None when it
    succeeds, and removes the category's earlier failure record; returns the error when it
    raises one, which is recorded (:func:`write`) when ``record`` (on the chief). Errors of
    the types ``stop``, ``KeyboardInterrupt`` and ``SystemExit`` propagate."""
    try:
        run()
    except stop:
        raise
    except Exception as e:
        if record:
            write(model_dir, category, e)
        return e
    if record:
        clear(model_dir, category)
    return None


def write(model_dir: str, category: str, error: BaseException) -> dict:
    """Writes ``<model_dir>/<category>/failed.json`` for ``error`` (its description and
    traceback) and removes the category's ``results.json``; returns the description."""
    failure = describe(error)
    out = rundir.category_dir(model_dir, category)
    stale = os.path.join(out, rundir.RESULTS_FILE)
    if tf.io.gfile.exists(stale):
        tf.io.gfile.remove(stale)
    files.write_json(os.path.join(out, rundir.FAILED_FILE), {
        "category": category, **failure,
        "traceback": "".join(traceback.format_exception(type(error), error,
                                                        error.__traceback__))})
    return failure


def clear(model_dir: str, category: str) -> None:
    """Removes the category's failure record, if it has one."""
    path = os.path.join(rundir.category_dir(model_dir, category), rundir.FAILED_FILE)
    if tf.io.gfile.exists(path):
        tf.io.gfile.remove(path)


def read(model_dir: str, category: str) -> Optional[dict]:
    """The category's failure (:func:`describe`'s fields), or None when it has none."""
    path = os.path.join(rundir.category_dir(model_dir, category), rundir.FAILED_FILE)
    if not tf.io.gfile.exists(path):
        return None
    record = files.read_json(path)
    return {k: record[k] for k in ("stage", "error", "message")}


def collect(model_dir: str) -> dict[str, dict]:
    """``{category: failure}`` for every category of ``model_dir`` whose last attempt failed."""
    found = {}
    for path in sorted(tf.io.gfile.glob(os.path.join(model_dir, "*", rundir.FAILED_FILE))):
        category = os.path.basename(os.path.dirname(path))
        found[category] = read(model_dir, category)
    return found


def markdown(failed: Mapping[str, Mapping]) -> str:
    """The "Failed categories" section of results.md (empty when none failed)."""
    if not failed:
        return ""
    lines = ["### Failed categories", "",
             f"{len(failed)} categor{'y' if len(failed) == 1 else 'ies'} failed; their files "
             "name the cause (`<category>/failed.json`, with the traceback). Running the same "
             "command again tries them again.", "",
             "| Category | Stage | Error |", "| --- | --- | --- |"]
    for name, f in sorted(failed.items()):
        message = f"{f['error']}: {f['message']}".replace("|", "/")
        lines.append(f"| {name} | {f['stage']} | {message} |")
    return "\n".join(lines) + "\n"


def summary_line(failed: Mapping[str, Mapping], total: int, results: str,
                 what: str = "categories") -> str:
    """``2 of 15 categories failed: screw (training: ...), pill (evaluation: ...); results for
    the other 13 in <results>``."""
    named = ", ".join(phrase(name, f) for name, f in failed.items())
    others = total - len(failed)
    tail = f"results for the other {others} in {results}" if others else "no results"
    return f"{len(failed)} of {total} {what} failed: {named}; {tail}"
