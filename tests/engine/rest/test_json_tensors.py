"""The REST bodies <-> protobuf messages, without a server."""

import json
import struct

import numpy as np
import pytest

from datasentinel.engine.errors import InvalidInput
from datasentinel.engine.rest import json_tensors
from datasentinel.oip import grpc_predict_v2_pb2 as oip


def test_json_values_become_the_raw_bytes_a_grpc_client_sends():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    body = json.dumps(
        {"id": "a", "parameters": {"threshold": 2, "top_features": 1, "binary_data_output": True},
         "inputs": [{"name": "features", "datatype": "FP32", "shape": [2, 3],
                     "data": x.tolist()}],
         "outputs": [{"name": "score"}]}
    ).encode()  # fmt: skip
    request, binary, everything = json_tensors.infer_request(body, None, "m", "")
    assert request.raw_input_contents[0] == x.tobytes() and request.id == "a"
    assert request.parameters["threshold"].int64_param == 2
    assert "binary_data_output" not in request.parameters
    assert [o.name for o in request.outputs] == ["score"] and everything and not binary


def test_binary_inputs_follow_the_json_header():
    x = np.ones((2, 2), np.float32)
    header = json.dumps(
        {"inputs": [{"name": "features", "datatype": "FP32", "shape": [2, 2],
                     "parameters": {"binary_data_size": 16}}],
         "outputs": [{"name": "score", "parameters": {"binary_data": True}}]}
    ).encode()  # fmt: skip
    request, binary, _ = json_tensors.infer_request(header + x.tobytes(), len(header), "m", "")
    assert request.raw_input_contents[0] == x.tobytes() and binary == {"score"}
    with pytest.raises(InvalidInput, match="do not add up"):
        json_tensors.infer_request(header + x.tobytes() + b"!", len(header), "m", "")


def test_outputs_as_json_or_binary():
    response = oip.ModelInferResponse(model_name="m", model_version="1", id="a")
    response.parameters["threshold"].double_param = 0.5
    response.outputs.add(name="score", datatype="FP32", shape=[2])
    response.raw_output_contents.append(np.array([1.5, 2.5], "<f4").tobytes())
    response.outputs.add(name="top_features", datatype="BYTES", shape=[2, 1])
    response.raw_output_contents.append(struct.pack("<I", 2) + b"f0" + struct.pack("<I", 2) + b"f1")
    body, length = json_tensors.infer_response(response, set(), False)
    document = json.loads(body)
    assert length is None and document["parameters"] == {"threshold": 0.5}
    assert [o["data"] for o in document["outputs"]] == [[1.5, 2.5], ["f0", "f1"]]
    body, length = json_tensors.infer_response(response, {"score"}, False)
    assert body[length:] == response.raw_output_contents[0]
    assert json.loads(body[:length])["outputs"][0]["parameters"] == {"binary_data_size": 8}


@pytest.mark.parametrize(
    "body, message",
    [
        (b"\xff", "not valid JSON"),
        (b'{"inputs": {}}', "list of objects"),
        (b'{"inputs": [{"name": "f", "datatype": "FP32", "shape": [1, -1]}]}', "whole numbers"),
        (b'{"inputs": [{"name": "f", "datatype": "FP32", "shape": [1, 2], "data": [1]}]}',
         "holds 1 values"),
        (b'{"inputs": [], "parameters": {"x": [1]}}', "boolean, number or string"),
    ],
)  # fmt: skip
def test_bad_bodies_say_what_is_wrong(body, message):
    with pytest.raises(InvalidInput, match=message):
        json_tensors.infer_request(body, None, "m", "")


def test_answers_keep_64_bit_integers_as_numbers_and_versions_as_text():
    metadata = oip.ModelMetadataResponse(name="m", versions=["7"])
    metadata.inputs.add(name="features", datatype="FP32", shape=[-1, 3])
    assert json_tensors.message_json(metadata) == {
        "name": "m",
        "versions": ["7"],
        "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 3]}],
    }
