"""The package's release, and the one check that a file this package reads back was written by
the same release series (major.minor): a model dir's ``config.json``, a density file."""

from __future__ import annotations

from typing import Optional

__version__ = "0.1.0"


def check(written: Optional[str], what: str, remedy: str) -> None:
    """Raises ValueError unless ``written`` (the version that ``what`` records, None when it
    records none) is this release series; the message ends with ``remedy``."""
    if written is not None and written.split(".")[:2] == __version__.split(".")[:2]:
        return
    if written is None:
        raise ValueError(f"{what} does not record the cutpaste_tf version that wrote it (an older "
                         f"release); this is {__version__}; {remedy}")
    raise ValueError(f"{what} was written by cutpaste_tf {written}, this is {__version__}; "
                     f"{remedy}")
