"""The TF Serving client requests (REST body, gRPC PredictRequest) against a tiny exported model:
the signature name, input key, dtype and shape they use are those of the SavedModel's signature
as TF Serving reads it (the SignatureDef in saved_model.pb), and the scores that come back over
a real gRPC channel (an in-process PredictionService running the SavedModel) are the export's."""

from __future__ import annotations

import base64
import json
import os
import pathlib
from concurrent import futures

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from cutpaste_tf import data
from cutpaste_tf.config import DensityConfig
from cutpaste_tf.evaluation import evaluate
from cutpaste_tf.models import build_cutpaste_model
from cutpaste_tf.serving import client, savedmodel

ROOT = pathlib.Path(__file__).resolve().parents[2]
TESTDATA = str(ROOT / "testdata")
SIZE = (32, 32)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[str, list[str]]:
    """A tiny export of washer (version 1) and three of its test images."""
    washer = data.index_mvtec(TESTDATA, "washer")
    tf.keras.utils.set_random_seed(0)
    model = build_cutpaste_model(3, head_widths=(16,), input_shape=(*SIZE, 3))
    estimator = evaluate.fit_density(model, washer, SIZE, DensityConfig())
    scorer = savedmodel.AnomalyScorer(model, estimator, SIZE, "pooled", threshold=1.0)
    path = savedmodel.export(scorer, str(tmp_path_factory.mktemp("export")), "washer")
    return path, list(washer.test_files[::12])


def _signature_def(path: str, name: str):
    """The SignatureDef ``name`` of the SavedModel at ``path``, as TF Serving reads it."""
    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    (meta_graph,) = saved.meta_graphs
    return meta_graph.signature_def[name]


def _direct_scores(path: str, images: list[str]) -> np.ndarray:
    signature = tf.saved_model.load(path).signatures[savedmodel.BYTES_SIGNATURE]
    batch = tf.constant([open(p, "rb").read() for p in images])
    return signature(**{savedmodel.BYTES_INPUT: batch})["score"].numpy()


def test_the_request_fields_are_those_of_the_exported_signature(exported):
    path, images = exported
    fields = client.request("washer", images)
    definition = _signature_def(path, fields["signature_name"])
    assert list(definition.inputs) == [fields["input_key"]] == ["image_bytes"]
    tensor_info = definition.inputs[fields["input_key"]]
    assert tensor_info.dtype == fields["dtype"].as_datatype_enum == tf.string.as_datatype_enum
    assert [d.size for d in tensor_info.tensor_shape.dim] == [-1]  # any batch size
    assert fields["shape"] == [len(images)]
    assert fields["inputs"] == [open(p, "rb").read() for p in images]
    loaded = tf.saved_model.load(path).signatures[fields["signature_name"]]
    _, kwargs = loaded.structured_input_signature
    assert list(kwargs) == [fields["input_key"]] and kwargs[fields["input_key"]].dtype == tf.string
    assert {"score", "is_anomaly", "threshold", "embedding"} <= set(definition.outputs)


def test_predict_request_proto_matches_the_signature_and_scores_as_the_export(exported):
    pytest.importorskip("tensorflow_serving", reason="pip install tensorflow-serving-api")
    path, images = exported
    message = client.predict_request("washer", images, version=1)
    definition = _signature_def(path, message.model_spec.signature_name)
    assert message.model_spec.name == "washer" and message.model_spec.version.value == 1
    assert set(message.inputs) == set(definition.inputs)
    for key, tensor in message.inputs.items():
        assert tensor.dtype == definition.inputs[key].dtype
        assert [d.size for d in tensor.tensor_shape.dim] == [len(images)]
    batch = tf.make_ndarray(message.inputs[savedmodel.BYTES_INPUT])
    assert list(batch) == [open(p, "rb").read() for p in images]
    signature = tf.saved_model.load(path).signatures[message.model_spec.signature_name]
    scores = signature(**{k: tf.constant(tf.make_ndarray(t))
                          for k, t in message.inputs.items()})["score"].numpy()
    np.testing.assert_allclose(scores, _direct_scores(path, images), rtol=1e-6)


def test_rest_body_carries_the_bytes_as_b64_under_the_input_key(exported):
    path, images = exported
    body = json.loads(client.rest_body("washer", images))
    assert body["signature_name"] == "serving_default"
    definition = _signature_def(path, body["signature_name"])
    assert [list(i) for i in body["instances"]] == [list(definition.inputs)] * len(images)
    decoded = [base64.b64decode(i["image_bytes"]["b64"], validate=True)
               for i in body["instances"]]
    assert decoded == [open(p, "rb").read() for p in images]


def test_grpc_round_trip_through_a_prediction_service(exported):
    """The documented client code against an in-process gRPC PredictionService that runs the
    SavedModel the way TF Serving does: by model name, signature name and input keys."""
    grpc = pytest.importorskip("grpc")
    pytest.importorskip("tensorflow_serving", reason="pip install tensorflow-serving-api")
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    path, images = exported
    models = {"washer": tf.saved_model.load(path)}

    class Service(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            if request.model_spec.name not in models:
                context.abort(grpc.StatusCode.NOT_FOUND, "Servable not found")
            signatures = models[request.model_spec.name].signatures
            if request.model_spec.signature_name not in signatures:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, "Serving signature not found")
            signature = signatures[request.model_spec.signature_name]
            _, expected = signature.structured_input_signature
            if set(request.inputs) != set(expected):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "input keys do not match")
            out = signature(**{k: tf.constant(tf.make_ndarray(t))
                               for k, t in request.inputs.items()})
            response = predict_pb2.PredictResponse()
            for key, value in out.items():
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
            return response

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Service(), server)
    port = server.add_insecure_port("localhost:0")
    server.start()
    try:
        with grpc.insecure_channel(f"localhost:{port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            response = stub.Predict(client.predict_request("washer", images), timeout=60.0)
            with pytest.raises(grpc.RpcError) as missing:
                stub.Predict(client.predict_request("bottle", images), timeout=60.0)
    finally:
        server.stop(None)
    out = client.outputs(response)
    np.testing.assert_allclose(out["score"], _direct_scores(path, images), rtol=1e-6)
    assert out["is_anomaly"].dtype == bool and out["threshold"].tolist() == [1.0] * len(images)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_no_images_is_a_clear_error():
    with pytest.raises(ValueError, match="no images"):
        client.request("washer", [])
