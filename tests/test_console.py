"""cutpaste_tf/console.py: progress lines that line-based tools can read, and stage lines."""

import io
import re

import pytest

from cutpaste_tf import console

CONTROL = re.compile(r"[\r\x08\x1b]")


@pytest.mark.parametrize("seconds, text", [(0.42, "0.4s"), (9.94, "9.9s"), (42.4, "42s"),
                                           (310, "5m10s"), (7500, "2h05m"), (-1, "0.0s")])
def test_duration(seconds, text):
    assert console.duration(seconds) == text


def test_progress_line_reads_like_the_example():
    line = console.progress_line("bottle", 150, 600, 0.8123, 0.714, [0.93, 0.66, 0.54],
                                 ("normal", "cutpaste", "scar"), 210.4, 310)
    assert line == ("[bottle] step 150/600 (25%) loss 0.812 acc 0.71 (normal 0.93 / cutpaste "
                    "0.66 / scar 0.54) 210 views/s ETA 5m10s")
    last = console.progress_line("bottle", 600, 600, 0.1, 0.9, [0.9, 0.9], ("a", "b"), 200, 0)
    assert last.endswith("(100%) loss 0.100 acc 0.90 (a 0.90 / b 0.90) 200 views/s")


def _metrics(loss, accuracy, per_class):
    return {"loss": loss, "accuracy": accuracy, "accuracy_per_class": per_class}


def test_progress_off_a_terminal_prints_plain_lines_with_the_means_since_the_last():
    out = io.StringIO()  # not a terminal
    progress = console.Progress("washer", 4, 0, ("normal", "cutpaste"), 6, every_s=3600,
                                stream=out)
    assert progress.bar is None
    for done, m in enumerate([_metrics(1.0, 0.5, [1.0, 0.0]), _metrics(0.5, 0.25, [0.5, 0.0]),
                              _metrics(0.3, 0.75, [1.0, 0.5])], start=1):
        progress.step(done, m)
    assert out.getvalue() == ""  # not due: an hour between lines
    progress.step(4, _metrics(0.2, 1.0, [1.0, 1.0]))  # the last step always prints
    (line,) = out.getvalue().splitlines()
    assert re.fullmatch(r"\[washer\] step 4/4 \(100%\) loss 0\.500 acc 0\.62 \(normal 0\.88 / "
                        r"cutpaste 0\.38\) \d+ views/s", line), line
    assert not CONTROL.search(out.getvalue())


def test_progress_every_step_and_disabled():
    out = io.StringIO()
    progress = console.Progress("fabric", 3, 1, ("normal", "cutpaste", "scar"), 96, every_s=0,
                                stream=out)
    progress.step(2, _metrics(1.1, 0.3, [0.5, 0.2, 0.2]))
    progress.step(3, _metrics(1.0, 0.4, [0.6, 0.3, 0.3]))
    lines = out.getvalue().splitlines()
    assert [line.split(" (")[0] for line in lines] == ["[fabric] step 2/3", "[fabric] step 3/3"]
    assert "ETA" in lines[0] and "ETA" not in lines[1]
    quiet = io.StringIO()
    off = console.Progress("fabric", 3, 0, ("normal",), 6, every_s=0, enabled=False,
                           stream=quiet)
    off.step(3, _metrics(1.0, 1.0, [1.0]))
    assert quiet.getvalue() == ""


def test_stage_prints_a_start_and_an_end_line_with_its_duration():
    out = io.StringIO()
    with console.stage("[washer] ", "density fit", stream=out):
        pass
    start, end = out.getvalue().splitlines()
    assert start == "[washer] density fit: started"
    assert re.fullmatch(r"\[washer\] density fit: done in \d\.\ds", end)
    failed = io.StringIO()
    with pytest.raises(RuntimeError):
        with console.stage("", "export", stream=failed):
            raise RuntimeError("boom")
    assert failed.getvalue() == "export: started\n"  # no end line for a stage that failed
    silent = io.StringIO()
    with console.stage("", "export", verbose=False, stream=silent):
        pass
    assert silent.getvalue() == ""


def test_a_run_of_days_is_pointed_out_once(monkeypatch):
    clock = iter([0.0, 2.0, 4.0, 6.0, 8.0, 10.0])  # two seconds per step
    monkeypatch.setattr(console.time, "perf_counter", lambda: next(clock))
    out = io.StringIO()
    progress = console.Progress("bottle", 65536, 0, ("normal", "cutpaste", "scar"), 96,
                                every_s=0, stream=out)
    for done in range(1, 5):
        progress.step(done, _metrics(1.0, 0.4, [0.5, 0.3, 0.3]))
    lines = out.getvalue().splitlines()
    notes = [line for line in lines if "note:" in line]
    assert len(lines) == 5 and len(notes) == 1 and lines[2] == notes[0]  # after the 2nd line
    assert "other 65,534 steps take 36h" in notes[0] and "--require_accelerator" in notes[0]
    short = io.StringIO()
    fast = console.Progress("washer", 600, 0, ("normal",), 6, every_s=0, stream=short)
    clock2 = iter([0.0, 1.0, 2.0, 3.0])
    monkeypatch.setattr(console.time, "perf_counter", lambda: next(clock2))
    for done in range(1, 4):
        fast.step(done, _metrics(1.0, 0.5, [0.5]))
    assert "note:" not in short.getvalue()  # 600 steps at 1 s: minutes, not days
