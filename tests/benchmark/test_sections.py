"""cutpaste_tf.benchmark.sections: what each section measures and what measure() refuses (the
augment section through launch.benchmark: tests/launch/test_benchmark.py)."""

import json

import pytest

from cutpaste_tf.benchmark import sections
from cutpaste_tf.config import RunConfig, TrainConfig
from cutpaste_tf.pipeline.inputs import InputSpec

CONFIG = RunConfig(train=TrainConfig(task="cutpaste", image_size=(32, 32), batch_size=4))


def test_the_tasks_section_reads_no_image_and_writes_its_figures(tmp_path):
    out = tmp_path / "benchmark.json"
    figures = sections.measure(CONFIG, InputSpec(), ["tasks"], steps=1,
                               bench_tasks=["cutpaste", "rotation"], bench_sources=2,
                               output=str(out))
    assert figures["category"] is None and figures["hardware"]["cpu_cores"] >= 1
    for key in ("views_per_s_cutpaste_graph", "views_per_s_rotation_xla"):
        assert figures[key] > 0, key
    assert json.loads(out.read_text()) == json.loads(json.dumps(figures))


@pytest.mark.parametrize("args, message", [
    ({"sections": ["speed"]}, "sections: unknown section 'speed'"),
    ({"sections": ["tasks"], "bench_tasks": ["mixup"]}, "unknown: ['mixup']"),
    ({"sections": ["tasks"], "bench_sources": 0}, "bench_sources must be positive"),
])
def test_bad_sections_and_tasks_are_refused_before_measuring(args, message):
    with pytest.raises(ValueError) as e:
        sections.measure(CONFIG, InputSpec(), steps=1, **args)
    assert message in str(e.value)
