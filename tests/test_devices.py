"""cutpaste_tf.devices: the machine in words (a run's start line) and as the hardware record of
reports and benchmark.json."""

import platform

from cutpaste_tf import devices


def test_devices_are_described_by_model_and_count():
    assert devices.describe_devices([], 0, "AMD EPYC", 2) == "CPU (AMD EPYC, 2 cores)"
    assert devices.describe_devices([], 0, "Xeon", 1) == "CPU (Xeon, 1 core)"
    gpus = ["NVIDIA A100-SXM4-40GB"] * 2 + ["NVIDIA T4"]
    assert devices.describe_devices(gpus, 0, "Xeon", 8) == (
        "GPU: 2 x NVIDIA A100-SXM4-40GB, 1 x NVIDIA T4")
    assert devices.describe_devices([], 8, "Xeon", 96) == "TPU (8 cores)"


def test_device_summary_names_what_this_process_trains_on():
    import tensorflow as tf

    summary = devices.device_summary()
    if tf.config.list_physical_devices("GPU"):
        assert summary.startswith("GPU: 1 x ") and devices.has_accelerator()
    else:
        assert summary == f"CPU ({devices.cpu_model()}, {devices.cpu_cores()} core" + (
            "s)" if devices.cpu_cores() != 1 else ")")
        assert not devices.has_accelerator()
    assert devices.cpu_cores() >= 1 and devices.cpu_model()


def test_hardware_names_the_cpu_model_and_the_cores_this_process_may_use():
    import tensorflow as tf

    hw = devices.hardware()
    assert hw == {"cpu": devices.cpu_model(), "cpu_cores": devices.cpu_cores(),
                  "gpus": devices.gpu_names(), "tensorflow": tf.__version__,
                  "python": platform.python_version()}
