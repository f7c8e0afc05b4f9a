"""What a client sends TF Serving to score image files with an export, and how to read the answer.

The request names the model (the category, as in ``models.config``), the signature
:data:`~cutpaste_tf.serving.savedmodel.BYTES_SIGNATURE` and its one input,
:data:`~cutpaste_tf.serving.savedmodel.BYTES_INPUT`: a string tensor ``[batch]`` of encoded
PNG / JPEG / BMP files. :func:`request` gives it as plain data, :func:`rest_body` as the JSON of
TF Serving's REST API (port 8501), :func:`predict_request` as the gRPC ``PredictRequest``
(port 8500; needs ``pip install tensorflow-serving-api``), and :func:`outputs` reads a
``PredictResponse``.
"""

from __future__ import annotations

import base64
import json
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from cutpaste_tf.serving.savedmodel import BYTES_INPUT, BYTES_SIGNATURE

GRPC_PORT = 8500
REST_PORT = 8501
INPUT_DTYPE = tf.string


def request(model_name: str, image_paths: Sequence[str],
            signature_name: str = BYTES_SIGNATURE) -> dict:
    """The fields of a Predict call for ``image_paths``, as plain data: ``model_name``,
    ``signature_name``, ``input_key``, ``dtype`` (a ``tf.DType``), ``shape`` and ``inputs`` (the
    encoded files' bytes, in order)."""
    if not image_paths:
        raise ValueError("no images to send")
    images = []
    for path in image_paths:
        with tf.io.gfile.GFile(path, "rb") as f:
            images.append(f.read())
    return {"model_name": model_name, "signature_name": signature_name,
            "input_key": BYTES_INPUT, "dtype": INPUT_DTYPE, "shape": [len(images)],
            "inputs": images}


def rest_body(model_name: str, image_paths: Sequence[str],
              signature_name: str = BYTES_SIGNATURE) -> str:
    """The JSON body to POST to ``/v1/models/<model_name>:predict``: one instance per image, the
    bytes as ``{"b64": ...}`` (TF Serving decodes base64 for inputs whose name ends in
    ``_bytes``)."""
    fields = request(model_name, image_paths, signature_name)
    instances = [{fields["input_key"]: {"b64": base64.b64encode(image).decode("ascii")}}
                 for image in fields["inputs"]]
    return json.dumps({"signature_name": fields["signature_name"], "instances": instances})


def predict_request(model_name: str, image_paths: Sequence[str],
                    signature_name: str = BYTES_SIGNATURE, version: Optional[int] = None):
    """A ``tensorflow_serving.apis.predict_pb2.PredictRequest`` for ``image_paths`` (the newest
    version of the model unless ``version`` is given)."""
    try:
        from tensorflow_serving.apis import predict_pb2
    except ImportError as e:
        raise ImportError("a gRPC PredictRequest needs tensorflow-serving-api: "
                          "pip install tensorflow-serving-api") from e
    fields = request(model_name, image_paths, signature_name)
    message = predict_pb2.PredictRequest()
    message.model_spec.name = fields["model_name"]
    message.model_spec.signature_name = fields["signature_name"]
    if version is not None:
        message.model_spec.version.value = int(version)
    message.inputs[fields["input_key"]].CopyFrom(tf.make_tensor_proto(
        fields["inputs"], dtype=fields["dtype"], shape=fields["shape"]))
    return message


def outputs(response) -> dict[str, np.ndarray]:
    """The outputs of a ``PredictResponse`` (``score``, ``is_anomaly``, ``threshold``,
    ``embedding`` and, for models with one, ``anomaly_map``) as NumPy arrays."""
    return {key: tf.make_ndarray(tensor) for key, tensor in response.outputs.items()}
