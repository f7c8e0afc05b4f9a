"""Installs the cutpaste_tf library and its launch/ entry points."""

import pathlib

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent
REQUIREMENTS = [
    line.strip()
    for line in (HERE / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

setup(
    name="cutpaste_tf",
    version="0.1.0",
    description="CutPaste self-supervised anomaly detection and localisation (CVPR 2021) "
    "in TensorFlow 2 / Keras 3",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["cutpaste_tf", "cutpaste_tf.*", "launch", "launch.*"]),
    python_requires=">=3.10",
    install_requires=REQUIREMENTS,
    # The tests also check the split of the real ELPV labels, so they install that package.
    extras_require={"test": ["pytest>=7", "pytest-xdist>=3", "hypothesis>=6", "pillow>=9",
                             "matplotlib>=3.7", "elpv-dataset>=1.0",
                             "tensorflow-serving-api>=2.16,<3"],
                    "viz": ["matplotlib>=3.7"],
                    # gRPC requests to TF Serving (cutpaste_tf.serving.client.predict_request).
                    "grpc": ["tensorflow-serving-api>=2.16,<3"],
                    # Real solar-cell images for --dataset=elpv (90 MB, CC BY-NC-SA 4.0).
                    "elpv": ["elpv-dataset>=1.0"]},
    license="Apache-2.0",
)
