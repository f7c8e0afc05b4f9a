"""Op-level profile of the 3-way train step (batch 96, random pixels): TensorFlow's trace of
three steps, summed by op type and by op.

Usage: ``python bench/profile_step.py 128`` (image size). Times are per step, summed over ops
that may run side by side, so they add up to more than the step's wall time.
"""

from __future__ import annotations

import collections
import glob
import sys
import tempfile

import step_parts  # bench/, first on the path when this script runs
import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2

STEPS = 3


def op_times(size: int) -> tuple[collections.Counter, collections.Counter]:
    """Milliseconds per step by op type and by op name."""
    *_, views, labels, step = step_parts.setup(size)
    step(views, labels), step(views, labels)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(STEPS):
            step(views, labels)
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        path = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0]
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
    by_type, by_name = collections.Counter(), collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if name.count(":") == 1 and " " not in name:  # "<op name>:<op type>"
                    ms = event.duration_ps / 1e9 / STEPS
                    by_type[name.rsplit(":", 1)[1]] += ms
                    by_name[name] += ms
    return by_type, by_name


if __name__ == "__main__":
    by_type, by_name = op_times(int(sys.argv[1]) if len(sys.argv) > 1 else 128)
    print("by op type (ms per step):")
    for name, ms in by_type.most_common(20):
        print(f"  {ms:8.1f}  {name}")
    print("by op (ms per step):")
    for name, ms in by_name.most_common(20):
        print(f"  {ms:8.1f}  {name}")
