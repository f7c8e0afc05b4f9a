"""Each launcher's own flags (launch/flags.py's LAUNCHER_FLAGS): --help lists them, another
launcher's flag is refused with exit 2 naming it, each launcher reads only the flags it accepts,
every shipped config parses with the launchers the docs run it with, and flags.txt holds only
the project's flags and redoes the run."""

from __future__ import annotations

import importlib
import re

import pytest
from absl import flags
from helpers import ROOT, TINY_TRAIN, run_module

from launch import configs, flag_reference
from launch import flags as flag_defs
from launch import train as train_launcher

LAUNCHERS = sorted(flag_defs.LAUNCHER_FLAGS)
ABSL_FLAGS = ("test_tmpdir", "test_srcdir", "verbosity", "logtostderr", "alsologtostderr",
              "flagfile", "helpfull", "run_with_pdb")
_READ = re.compile(r"\bFLAGS(?:\.(\w+)|\[[\"'](\w+)[\"']\])")
_CONFIGS_CALL = re.compile(r"\bconfigs\.(\w+)\(")
_DOC_COMMAND = re.compile(r"python -m (launch\.\w+) --flagfile=(configs/[\w.]+\.flags)")


def source(module: str) -> str:
    return (ROOT / "launch" / f"{module.split('.')[-1]}.py").read_text(encoding="utf-8")


def test_every_launcher_has_an_entry_and_starts_with_its_own_name():
    with_main = {f"launch.{p.stem}" for p in (ROOT / "launch").glob("*.py")
                 if "\ndef main(" in p.read_text(encoding="utf-8")}
    assert set(LAUNCHERS) == with_main - {"launch.flag_reference"}  # that one is argparse's
    for launcher in LAUNCHERS:
        text = source(launcher)
        assert f'flag_defs.start(argv, "{launcher}")' in text, launcher
        assert "flag_defs.run(main)" in text and "app.run(" not in text, launcher


def test_every_entry_names_a_section_or_a_flag_of_launch_flags():
    keys = {flag_defs.section_key(t) for t in flag_defs.shared_sections().values()}
    for launcher, entries in flag_defs.LAUNCHER_FLAGS.items():
        for entry in entries:
            known = (entry[2:] in flag_defs.shared_sections() if entry.startswith("--")
                     else entry in keys)
            assert known, f"{launcher}: {entry}"
    # Every shared flag is some launcher's.
    assert not [n for n in flag_defs.shared_sections() if not flag_defs.owners(n)]


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_help_lists_the_launchers_flags_by_section(launcher):
    module = importlib.import_module(launcher)
    text = flag_defs.help_text(launcher, module.__doc__)
    assert text.startswith(f"python -m {launcher}\n\n{module.__doc__.strip().splitlines()[0]}")
    accepted = flag_defs.accepted(launcher)
    assert accepted
    for name in accepted:
        flag = flags.FLAGS[name]
        shown = f"--[no]{name}" if isinstance(flag, flags.BooleanFlag) else f"--{name}"
        assert re.search(rf"^  {re.escape(shown)}  \(default: ", text, re.M), name
    others = set(flag_defs.shared_sections()) | set(flag_defs.own_flags())
    for name in others - set(accepted):
        assert not re.search(rf"^  --(\[no\])?{name}  ", text, re.M), name
    for name in ABSL_FLAGS:
        assert not re.search(rf"^  --(\[no\])?{name}  ", text, re.M), name


def test_help_groups_by_section_with_defaults():
    text = flag_defs.help_text("launch.train")
    data = text.split("\nData\n", 1)[1].split("\n\n", 1)[0]
    assert "  --data_dir  (default: unset)" in data and "--task" not in data
    proxy = text.split("\nProxy task and optimisation (Appendix A.1)\n", 1)[1]
    assert proxy.startswith("  --task  (default: 3way)\n      one of ")
    assert "  --learning_rate  (default: 0.03)\n      Peak learning rate" in proxy
    importlib.import_module("launch.benchmark")  # as its own --help has it: its flags defined
    benchmark = flag_defs.help_text("launch.benchmark")
    assert "\nlaunch.benchmark's own flags\n  --steps  (default: 10)" in benchmark
    export = flag_defs.help_text("launch.export")
    assert "\nRe-export (launch.export)\n" in export and "--[no]tflite  (default: false)" in export
    assert "--data_dir" not in export and "--learning_rate" not in export


@pytest.mark.parametrize("launcher, flag, owner", [
    ("launch.train", "--tflite", "launch.export"),
    ("launch.train", "--threshold=1.0", "launch.export"),
    ("launch.train", "--seeds=3", "launch.experiment"),
    ("launch.export", "--learning_rate=0.1", "launch.train"),
    ("launch.predict", "--model_dir=runs/x", "launch.train"),
    ("launch.report", "--images=x", "launch.predict"),
    ("launch.budget_study", "--data_dir=x", "launch.train"),
    ("launch.experiment", "--tsne_perplexity=5", "launch.tsne"),
])
def test_another_launchers_flag_is_refused_naming_it(run_launcher, capsys, launcher, flag,
                                                     owner):
    module = importlib.import_module(launcher)
    assert run_launcher(module, flag) == 2
    err = capsys.readouterr().err
    name = flag.split("=")[0]
    assert err.startswith(f"error: {name} is a flag of {owner}")
    assert err.endswith(f", not {launcher} (python -m {owner} --help)\n")
    assert err.count("\n") == 1


def test_a_foreign_flag_in_a_flagfile_is_refused_too(run_launcher, capsys, tmp_path):
    flagfile = tmp_path / "mine.flags"
    flagfile.write_text("--flagfile=configs/quickstart.flags\n--tflite\n")
    assert run_launcher(train_launcher, f"--flagfile={flagfile}") == 2
    assert capsys.readouterr().err == ("error: --tflite is a flag of launch.export, not "
                                       "launch.train (python -m launch.export --help)\n")


def test_absl_flags_are_accepted_everywhere(parse_flags):
    parse_flags("--verbosity=1", "--logtostderr", "--alsologtostderr")
    for launcher in LAUNCHERS:
        flag_defs.check_flags(launcher)  # returns: nothing foreign


class _Recorder:
    """Stands in for FLAGS and notes every flag read."""

    def __init__(self, wrapped):
        self.wrapped, self.read = wrapped, set()

    def __getattr__(self, name):
        self.read.add(name)
        return getattr(self.wrapped, name)

    def __getitem__(self, name):
        self.read.add(name)
        return self.wrapped[name]


def configs_reads(function: str, parse_flags, monkeypatch) -> set[str]:
    """The flags ``launch.configs.<function>()`` reads at their defaults."""
    parse_flags()
    recorder = _Recorder(configs.FLAGS)
    monkeypatch.setattr(configs, "FLAGS", recorder)
    getattr(configs, function)()
    monkeypatch.setattr(configs, "FLAGS", recorder.wrapped)
    return recorder.read


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_each_launcher_reads_only_the_flags_it_accepts(launcher, parse_flags, monkeypatch):
    text = source(launcher)
    project = set(flag_defs.shared_sections()) | set(flag_defs.own_flags())
    reads = {a or b for a, b in _READ.findall(text)} & project
    for function in set(_CONFIGS_CALL.findall(text)):
        reads |= configs_reads(function, parse_flags, monkeypatch) & project
    assert reads, launcher
    assert reads <= set(flag_defs.accepted(launcher)), sorted(
        reads - set(flag_defs.accepted(launcher)))


def test_the_run_config_reads_every_training_flag_it_is_built_from(parse_flags, monkeypatch):
    reads = configs_reads("run_config", parse_flags, monkeypatch)
    assert {"learning_rate", "dense_patch_size", "threshold_quantile", "jitter"} <= reads
    assert not reads & {"threshold", "tflite", "seeds", "model"}


def _documented_commands() -> list[tuple[str, str]]:
    """(launcher, config) of every ``python -m launch.X --flagfile=configs/Y.flags`` in the
    configs' headers, the README and docs/."""
    pages = [*sorted((ROOT / "configs").glob("*.flags")), ROOT / "README.md",
             *sorted((ROOT / "docs").glob("*.md"))]
    found = {m for page in pages for m in _DOC_COMMAND.findall(page.read_text(encoding="utf-8"))}
    return sorted(found)


def test_every_shipped_config_names_its_launcher_or_is_nested():
    commands = _documented_commands()
    named = {config for _, config in commands}
    for path in sorted((ROOT / "configs").glob("*.flags")):
        config = f"configs/{path.name}"
        nested = [p for p in (ROOT / "configs").glob("*.flags")
                  if f"--flagfile={config}\n" in p.read_text(encoding="utf-8")]
        assert config in named or nested, config
    assert ("launch.experiment", "configs/sweep_area.flags") in commands
    assert ("launch.benchmark", "configs/3way.flags") in commands


@pytest.mark.parametrize("launcher, config", _documented_commands())
def test_every_shipped_config_parses_with_its_launcher(parse_flags, launcher, config):
    parse_flags(f"--flagfile={config}")
    flag_defs.check_flags(launcher)  # exits 2 on a flag of another launcher


def test_cpu_choices_parse_with_the_configs_that_nest_it(parse_flags):
    parse_flags("--flagfile=configs/3way.flags", "--flagfile=configs/cpu_choices.flags")
    for launcher in ("launch.train", "launch.experiment", "launch.benchmark", "launch.diagnose"):
        flag_defs.check_flags(launcher)


def test_flags_txt_holds_the_project_flags_and_redoes_the_run(parse_flags, tmp_path):
    parse_flags(*TINY_TRAIN, "--model_dir=runs/x", "--verbosity=1")
    text = flag_defs.flags_into_string("launch.train")
    config = configs.run_config()
    names = {line.split("=")[0].removeprefix("--").removeprefix("no") for line in
             text.splitlines()}
    assert names <= set(flag_defs.accepted("launch.train")) | {
        n.removeprefix("no") for n in flag_defs.accepted("launch.train")}
    for name in (*ABSL_FLAGS, "tflite", "threshold", "experiment_dir", "seeds", "steps"):
        assert f"--{name}=" not in text and f"--no{name}\n" not in text, name
    assert "--image_size=32\n" in text and "--model_dir=runs/x\n" in text
    assert "--nodecode_check\n" not in text and "--decode_check\n" in text
    flagfile = tmp_path / "flags.txt"
    flagfile.write_text(text)
    parse_flags(f"--flagfile={flagfile}")
    flag_defs.check_flags("launch.train")
    assert configs.run_config() == config


def test_own_flags_are_the_flags_each_launcher_defines():
    for launcher in LAUNCHERS:
        importlib.import_module(launcher)
    defined = flags.FLAGS.flags_by_module_dict()
    for launcher in LAUNCHERS:
        names = tuple(f.name for f in defined.get(launcher, []))
        assert names == flag_defs.OWN_FLAGS.get(launcher, ()), launcher
    assert flag_reference.flag_modules() == ["launch.flags", *sorted(flag_defs.OWN_FLAGS)]


@pytest.mark.parametrize("args, out, err, code", [
    (["--help"], "\nData\n  --data_dir  (default: unset)", "", 0),
    (["--tflite"], "", "error: --tflite is a flag of launch.export, not launch.train "
                       "(python -m launch.export --help)\n", 2),
])
def test_train_as_a_user_runs_it(args, out, err, code):
    result = run_module("launch.train", *args, timeout=300)
    assert result.returncode == code, result.stderr[-2000:]
    assert out in result.stdout and result.stderr.endswith(err)
    if args == ["--help"]:
        assert "--[no]tflite" not in result.stdout and "--test_tmpdir" not in result.stdout


def test_a_typo_gets_its_suggestions_as_flags():
    assert flag_defs.suggested_as_flags(
        "Unknown command line flag 'treshold'. Did you mean: threshold, threshold_folds ?") == (
        "Unknown command line flag 'treshold'. Did you mean: --threshold, --threshold_folds?")
    assert flag_defs.suggested_as_flags("Unknown command line flag 'zzz'") == (
        "Unknown command line flag 'zzz'")
    result = run_module("launch.export", "--model_dir=runs/x", "--treshold=20", timeout=300)
    assert result.returncode == 2
    assert result.stderr.endswith(
        "error: Unknown command line flag 'treshold'. Did you mean: --threshold, "
        "--threshold_folds, --threshold_quantile? (python -m launch.export --help)\n"), (
        result.stderr[-2000:])
