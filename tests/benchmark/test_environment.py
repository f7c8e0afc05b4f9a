"""cutpaste_tf.benchmark.environment: what the accelerator check records about the machine, and
when it leaves mixed_bfloat16 out."""

from cutpaste_tf import devices
from cutpaste_tf.benchmark import environment as env_lib


def test_environment_says_what_runs_here():
    env = env_lib.environment()
    assert env["tensorflow"] and env["keras"] and env["devices"]
    assert env["hardware"] == devices.hardware()
    assert isinstance(env["xla"]["available"], bool)
    assert isinstance(env["bfloat16"]["available"], bool)
    assert env["bfloat16"]["native"] in (True, False, None)


def test_bf16_is_skipped_where_it_does_not_run_or_is_emulated():
    broken = {"bfloat16": {"available": False, "error": "RuntimeError: no"}}
    assert env_lib.bf16_skip_reason(broken) == ("bfloat16 does not run on this machine: "
                                                "RuntimeError: no")
    old_gpu = {"gpus": [{"compute_capability": [7, 5]}],
               "bfloat16": {"available": True, "native": False}}
    assert "emulated" in env_lib.bf16_skip_reason(old_gpu)
    new_gpu = {"gpus": [{"compute_capability": [9, 0]}],
               "bfloat16": {"available": True, "native": True}}
    assert env_lib.bf16_skip_reason(new_gpu) is None
    cpu = {"gpus": [], "bfloat16": {"available": True, "native": None}}
    assert env_lib.bf16_skip_reason(cpu) is None
