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
