"""cutpaste_tf.benchmark.environment: what the accelerator check records about the machine, and
when it leaves mixed_bfloat16 out."""

from cutpaste_tf.benchmark import environment as env_lib


def test_environment_says_what_runs_here():
    env = env_lib.environment()
    assert env["tensorflow"] and env["keras"] and env["devices"]
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


def test_devices_are_described_by_model_and_count():
    assert env_lib.describe_devices([], 0, "AMD EPYC", 2) == "CPU (AMD EPYC, 2 cores)"
    assert env_lib.describe_devices([], 0, "Xeon", 1) == "CPU (Xeon, 1 core)"
    gpus = ["NVIDIA A100-SXM4-40GB"] * 2 + ["NVIDIA T4"]
    assert env_lib.describe_devices(gpus, 0, "Xeon", 8) == (
        "GPU: 2 x NVIDIA A100-SXM4-40GB, 1 x NVIDIA T4")
    assert env_lib.describe_devices([], 8, "Xeon", 96) == "TPU (8 cores)"


def test_device_summary_names_what_this_process_trains_on():
    import tensorflow as tf

    summary = env_lib.device_summary()
    if tf.config.list_physical_devices("GPU"):
        assert summary.startswith("GPU: 1 x ") and env_lib.has_accelerator()
    else:
        assert summary == f"CPU ({env_lib.cpu_model()}, {env_lib.cpu_cores()} core" + (
            "s)" if env_lib.cpu_cores() != 1 else ")")
        assert not env_lib.has_accelerator()
    assert env_lib.cpu_cores() >= 1 and env_lib.cpu_model()
