"""cutpaste_tf.analysis.head_probe: the heads launch.diagnose probes (the probe itself:
tests/training/test_diagnostics.py)."""

import pytest

from cutpaste_tf.analysis import head_probe


def test_parse_head():
    assert head_probe.parse_head("512x8") == (512,) * 8
    assert head_probe.parse_head("512-256") == (512, 256)
    assert head_probe.parse_head("1024x2-128") == (1024, 1024, 128)
    assert head_probe.parse_head("none") == ()
    for bad in ("", "x8", "512x", "abc", "0"):
        with pytest.raises(ValueError, match="heads=.*: not widths"):
            head_probe.parse_head(bad)


def test_probe_measures_each_head_on_the_same_batches(capsys):
    import json

    from cutpaste_tf.config import RunConfig, TrainConfig
    from cutpaste_tf.pipeline import inputs

    config = RunConfig(train=TrainConfig(task="cutpaste", image_size=(32, 32), batch_size=4))
    washer = inputs.measured_category(inputs.InputSpec())
    lines = head_probe.probe(config, washer, ["none", "8x2"], batches=2)
    assert [line["head"] for line in lines] == ["none", "8x2"]
    assert all(line["category"] == "washer" and line["image_size"] == [32, 32] for line in lines)
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed == json.loads(json.dumps(lines))  # one JSON line per head, as it came
    with pytest.raises(ValueError, match="probe_batches must be at least 2"):
        head_probe.probe(config, washer, ["none"], batches=1)
