"""The one error handling of every launcher, and the translation of library messages to flags.

The library names a setting as a library caller knows it, in one form: ``name=value``
(``dataset=visa``, ``model_dir=runs/x``, ``overwrite=True``), the bare ``name`` where no value
applies and the name has an underscore (``data_dir is required``), and a field whose flag
carries its section by its dotted path (``threshold.quantile``). :func:`to_flags` turns every
such name that a flag sets into that flag (``--dataset=visa``, ``--overwrite``,
``--threshold_quantile``); everything else in the message stays as it is.

Each launcher's ``main`` wraps its work in :func:`reported` with the errors it expects from bad
input; such an error ends the run with one line on stderr, ``error: <message>``, and exit
status 2 (1 where the launcher says so). A category that fails once training has begun does
not end the run: :func:`category_failed` says so and the run goes on; :func:`end_with_failures`
ends it with status 1 and a summary line.
"""

from __future__ import annotations

import contextlib
import re
import sys
from typing import Iterator, NoReturn

from absl import flags

from cutpaste_tf import storage
from cutpaste_tf.pipeline import failures

# Library names that differ from the flag that sets them: the fields whose flag carries the
# section's name (launch/flags.py's rule), and the section's ``kind`` (the section's name).
FLAG_FOR: dict[str, str] = {
    "threshold.quantile": "threshold_quantile",
    "threshold.folds": "threshold_folds",
    "density.kind": "density",
    "density.augment_copies": "density_augment_copies",
    "density.augment_jitter": "density_augment_jitter",
    "robustness.shifts": "stress_shifts",
    "robustness.max_images": "stress_max_images",
}

# Flags whose value is an address, not a file path: the remote-path check leaves them alone
# (``--tpu=grpc://10.0.0.2:8470``).
ADDRESS_FLAGS = frozenset({"tpu"})

# A name (optionally dotted), not inside a path, a flag or a longer word; then "=True", "=" or
# nothing (then no word character, path separator or dotted continuation may follow).
_NAME = re.compile(r"(?<![\w./=-])([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)?)"
                   r"(?:(=True\b|=)|(?![\w/-]|\.\w))")


def flag_names() -> frozenset[str]:
    """Every flag the launchers define (absl's own flags left out)."""
    return frozenset(f.name for module, defined in flags.FLAGS.flags_by_module_dict().items()
                     if not module.startswith("absl") for f in defined)


def to_flags(message: str) -> str:
    """``message`` with each setting it names (see the module docstring) as its flag."""
    names = flag_names()

    def flag(match: re.Match) -> str:
        name, equals = match.group(1), match.group(2)
        flag_name = FLAG_FOR.get(name, name if name in names else None)
        if flag_name is None or (equals is None and "_" not in name and "." not in name):
            return match.group(0)  # not a setting, or a single word that may be plain English
        if equals == "=True":
            return f"--{flag_name}"
        return f"--{flag_name}{equals or ''}"

    return _NAME.sub(flag, message)


def fail(error: "BaseException | str", status: int = 2, where: str = "") -> NoReturn:
    """Ends the launcher: ``error: <where><message in flag names>`` on stderr, exit ``status``."""
    print(f"error: {where}{to_flags(str(error))}", file=sys.stderr)
    sys.exit(status)


@contextlib.contextmanager
def reported(*kinds: type[BaseException], status: int = 2, where: str = "") -> Iterator[None]:
    """Within the block, an error of one of ``kinds`` ends the launcher through :func:`fail`;
    any other error propagates unchanged."""
    try:
        yield
    except kinds as e:
        fail(e, status, where)


def category_failed(where: str, error: BaseException) -> dict:
    """:func:`cutpaste_tf.pipeline.failures.announce` with the message in flag names: what the
    training launchers say when a category fails and the run goes on."""
    return failures.announce(where, error, to_flags)


def end_with_failures(failed: dict[str, dict], total: int, results: str,
                      what: str = "categories") -> None:
    """Ends the launcher with status 1 and one summary line on stderr when anything in
    ``failed`` (name -> failure) failed (:func:`cutpaste_tf.pipeline.failures.summary_line`);
    returns when nothing did."""
    if failed:
        named = {n: {**f, "message": to_flags(f["message"])} for n, f in failed.items()}
        print(failures.summary_line(named, total, results, what), file=sys.stderr, flush=True)
        sys.exit(1)


def check_remote_paths() -> None:
    """Ends the launcher when a flag names a remote path (``gs://...``) whose store cannot be
    reached, with the cause in one line: ``--data_dir=gs://b/x: cannot reach Cloud Storage:
    Could not resolve host: ...``, not a later "does not exist". Only file path flags are
    checked, not the addresses in :data:`ADDRESS_FLAGS`."""
    seen: set[str] = set()
    for module, defined in flags.FLAGS.flags_by_module_dict().items():
        if module.startswith("absl"):
            continue
        for flag in defined:
            if flag.name in seen or flag.name in ADDRESS_FLAGS or not flag.present:
                continue
            seen.add(flag.name)
            values = flag.value if isinstance(flag.value, list) else [flag.value]
            for value in values:
                if isinstance(value, str) and storage.is_remote(value):
                    cause = storage.problem(value)
                    if cause:
                        print(f"error: --{flag.name}={value}: {cause}", file=sys.stderr)
                        sys.exit(2)
