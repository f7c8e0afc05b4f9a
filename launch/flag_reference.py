"""Writes the Markdown reference of every command-line flag, from the flag definitions themselves.

    python -m launch.flag_reference --output=docs/flags.md
    python -m launch.flag_reference                        (prints it)

Every module of ``launch/`` that defines flags is imported and its flags are read back from absl's
registry (``FLAGS.flags_by_module_dict()``): name, type, default and help, in the order they are
defined. The shared flags of ``launch/flags.py`` are grouped by its sections (``SECTIONS``).
The text depends only on the definitions, never on the machine it is generated on, so
``tests/launch/test_flag_reference.py`` can fail when ``docs/flags.md`` is out of date.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pathlib
import sys
import tempfile

from absl import flags

from launch import flags as flag_defs

SHARED = "launch.flags"
COMMAND = "python -m launch.flag_reference --output=docs/flags.md"

_TYPES = {"bool": "bool", "int": "integer", "float": "float", "string": "string",
          "string enum": "enum", "comma separated list of strings": "list"}

HEADER = f"""# Flag reference

Every flag of the launchers, generated from their definitions by
`{COMMAND}`; do not edit it by hand
(`tests/launch/test_flag_reference.py` fails when it is out of date).

`launch/flags.py` defines the shared flags in sections; each launcher accepts the sections (and
single flags) the table below names, plus its own flags, listed under its name, and absl's
(`--flagfile`, `--helpfull`, ...). A flag of another launcher is refused with exit status 2
(`error: --tflite is a flag of launch.export, not launch.train`), and
`python -m launch.<name> --help` lists exactly what that launcher accepts. A flagfile
(`--flagfile=configs/...`) holds flags one per line; the shipped configs hold training flags, which
the training launchers share. A bool flag is set with `--name` or `--name=true` and cleared with
`--noname` or `--name=false`; a list flag takes comma-separated values.
"""


def flag_modules() -> list[str]:
    """The ``launch`` modules that define flags, ``launch.flags`` first."""
    return [SHARED, *sorted(flag_defs.OWN_FLAGS)]


def _portable(text: str) -> str:
    """Text with this machine's directories replaced by symbols, so the output is the same
    everywhere."""
    places = [(os.getcwd(), "<cwd>"), (tempfile.gettempdir(), "<tmp>"),
              (os.path.expanduser("~"), "~"), (sys.prefix, "<python prefix>")]
    for path, symbol in sorted(places, key=lambda p: -len(p[0])):
        if len(path) > 1:
            text = text.replace(path, symbol)
    return text


def _cell(text: str) -> str:
    """One Markdown table cell: one line, with the characters a table or HTML would eat escaped."""
    text = _portable(" ".join(text.split()))
    for char in "\\|*<>":
        text = text.replace(char, "\\" + char)
    return text


def _default(flag: flags.Flag) -> str:
    if flag.default is None:
        return "unset"
    shown = flag.default_as_str or ""
    if len(shown) >= 2 and shown[0] == shown[-1] == "'":
        shown = shown[1:-1]
    shown = _portable(shown).replace("|", "\\|")
    return f"`{shown}`" if shown else "empty"


def row(flag: flags.Flag) -> str:
    """The table row of one flag: name, type (an enum's values), default, help."""
    kind, text = _TYPES.get(flag.flag_type(), flag.flag_type()), flag.help or ""
    values = getattr(flag.parser, "enum_values", None)
    if values:
        kind = "one of " + ", ".join(f"`{v}`" for v in values)
        text = text.removeprefix(f"<{'|'.join(values)}>: ")
    return f"| `--{flag.name}` | {kind} | {_default(flag)} | {_cell(text)} |"


def _table(rows: list[str]) -> list[str]:
    return ["| Flag | Type | Default | Meaning |", "| --- | --- | --- | --- |", *rows, ""]


def _names(items: list[str]) -> str:
    return ", ".join(f"`{item}`" for item in items)


def launcher_table() -> list[str]:
    """Which sections and single flags each launcher accepts (``LAUNCHER_FLAGS``)."""
    out = ["| Launcher | Accepts (sections of the shared flags; single flags) |", "| --- | --- |"]
    for launcher, entries in flag_defs.LAUNCHER_FLAGS.items():
        parts = [e for e in entries if not e.startswith("--")]
        single = [e for e in entries if e.startswith("--")]
        text = "; ".join(filter(None, [", ".join(parts), _names(single)]))
        if any(m == launcher for m in flag_defs.own_flags().values()):
            text = "; ".join(filter(None, [text, "its own flags (below)"]))
        out.append(f"| `{launcher}` | {text} |")
    return [*out, ""]


def accepted_by(title: str, names: list[str]) -> str:
    """The line under a shared section's heading: the launchers that accept all of it, and
    those that accept single flags of it."""
    key = flag_defs.section_key(title)
    whole = [n for n, entries in flag_defs.LAUNCHER_FLAGS.items() if key in entries]
    single = []
    for name in names:
        also = [n for n, entries in flag_defs.LAUNCHER_FLAGS.items() if f"--{name}" in entries]
        if also:
            single.append(f"`--{name}` also by {_names(also)}")
    return "Accepted by " + "; ".join([_names(whole) or "no launcher as a whole", *single]) + "."


def _module_text(module: str, defined: list[flags.Flag]) -> list[str]:
    if module == SHARED:
        out = ["## Shared flags (`launch/flags.py`)", "", *launcher_table()]
        where = flag_defs.shared_sections()
        groups: dict[str, list[flags.Flag]] = {}
        for flag in defined:
            groups.setdefault(where.get(flag.name, "Other"), []).append(flag)
        for title, group in groups.items():
            out += [f"### {title}", "", accepted_by(title, [f.name for f in group]), "",
                    *_table([row(f) for f in group])]
        return out
    doc = (sys.modules[module].__doc__ or "").strip().splitlines()
    intro = [doc[0], ""] if doc else []
    return [f"## `python -m {module}`", "", *intro, *_table([row(f) for f in defined])]


def reference_text() -> str:
    """The whole Markdown reference."""
    modules = flag_modules()
    for module in modules:
        importlib.import_module(module)
    by_module = flags.FLAGS.flags_by_module_dict()
    out = HEADER.splitlines() + [""]
    for module in modules:
        out += _module_text(module, by_module.get(module, []))
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", help="Markdown file to write (default: print it).")
    args = parser.parse_args(argv)
    text = reference_text()
    if args.output:
        pathlib.Path(args.output).write_text(text, encoding="utf-8")
        print(f"Wrote {args.output}")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
