"""The Open Inference Protocol (KServe v2) endpoint, served beside our own on the same port."""

import json
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest

from datasentinel.oip import grpc_predict_v2_pb2 as oip
from datasentinel.oip import grpc_predict_v2_pb2_grpc as oip_grpc
from datasentinel.v1 import scoring_pb2 as pb
from datasentinel.v1 import scoring_pb2_grpc as pb_grpc

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from tests.conftest import build_tiny_model, spawn_engine, wait_serving

    model = build_tiny_model(tmp_path_factory.mktemp("models"), dim=6, threshold=0.4)
    engine = spawn_engine(model.dir)
    wait_serving(engine)
    yield model, engine
    engine.stop()


def test_tritonclient_scores_like_our_own_service(served, tmp_path):
    model, engine = served
    x = np.random.default_rng(8).normal(scale=2, size=(50, model.dim)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    probe = subprocess.run(
        [
            sys.executable,
            str(HERE / "triton_client_probe.py"),
            str(engine.port),
            str(tmp_path / "x.npy"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    got = json.loads(probe.stdout)
    with engine.channel() as channel:
        ours = pb_grpc.AnomalyScorerStub(channel).Score(
            pb.ScoreRequest(
                ids=range(50), raw=pb.RawVectors(data=x.tobytes(), rows=50, cols=model.dim)
            )
        )
    np.testing.assert_array_equal(
        np.array(got["score"], np.float32), np.array(ours.scores, np.float32)
    )
    assert got["is_anomaly"] == list(ours.is_anomaly)
    assert any(got["is_anomaly"]) and not all(got["is_anomaly"])
    assert got["feature_errors_shape"] == [50, model.dim]
    assert got["live"] and got["ready"] and got["model_ready"] and not got["unknown_model_ready"]
    assert got["inputs"] == [
        {"name": "features", "datatype": "FP32", "shape": ["-1", str(model.dim)]}
    ]
    assert got["outputs"] == ["score", "is_anomaly", "feature_errors"]
    assert got["id"] == "r1"
    assert got["parameters"]["threshold"] == pytest.approx(model.threshold)
    assert got["parameters"]["execution_provider"] == "CPUExecutionProvider"
    assert len(got["parameters"]["model_sha256"]) == 64
    assert got["default_outputs"] == ["is_anomaly", "score"]
    assert got["stream"][0] == {"id": "s1", "n": 50}
    assert "features" in got["stream"][1]["error"] and "expects 6" in got["stream"][1]["error"]
    assert got["stream"][2] == {"id": "s3", "n": 50}


@pytest.fixture
def stub(served):
    with served[1].channel() as channel:
        yield oip_grpc.GRPCInferenceServiceStub(channel)


def infer_request(x, **kwargs):
    tensor = oip.ModelInferRequest.InferInputTensor(name="features", datatype="FP32", shape=x.shape)
    defaults = {
        "model_name": "datasentinel",
        "inputs": [tensor],
        "raw_input_contents": [x.tobytes()],
    }
    return oip.ModelInferRequest(**{**defaults, **kwargs})


def test_contents_and_raw_bytes_give_the_same_scores(stub, served):
    x = np.random.default_rng(3).normal(size=(4, served[0].dim)).astype(np.float32)
    by_raw = stub.ModelInfer(infer_request(x))
    tensor = oip.ModelInferRequest.InferInputTensor(
        name="features",
        datatype="FP32",
        shape=x.shape,
        contents=oip.InferTensorContents(fp32_contents=x.ravel()),
    )
    by_contents = stub.ModelInfer(oip.ModelInferRequest(model_name="datasentinel", inputs=[tensor]))
    assert by_raw.raw_output_contents[0] == by_contents.raw_output_contents[0]
    expected, _ = served[0].expected(x)
    np.testing.assert_allclose(
        np.frombuffer(by_raw.raw_output_contents[0], "<f4"), expected, rtol=1e-5
    )


BAD = {
    "unknown model": (dict(model_name="other"), grpc.StatusCode.NOT_FOUND, "unknown model 'other'"),
    "wrong version": (
        dict(model_version="v0"),
        grpc.StatusCode.NOT_FOUND,
        "version 'v0' is not served",
    ),
    "unknown output": (
        dict(outputs=[oip.ModelInferRequest.InferRequestedOutputTensor(name="x")]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "unknown outputs ['x']",
    ),
    "bytes not matching shape": (
        dict(raw_input_contents=[b"\0" * 5]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "5 bytes",
    ),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_requests_get_a_status_and_serving_goes_on(stub, served, case):
    changes, code, message = BAD[case]
    x = np.zeros((2, served[0].dim), np.float32)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(infer_request(x, **changes), timeout=10)
    assert caught.value.code() == code and message in caught.value.details()
    assert len(stub.ModelInfer(infer_request(x), timeout=10).raw_output_contents) == 2


def test_wrong_datatype_and_nan_are_invalid(stub, served):
    x = np.zeros((2, served[0].dim), np.float32)
    request = infer_request(x)
    request.inputs[0].datatype = "FP64"
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(request, timeout=10)
    assert (
        caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "FP32" in caught.value.details()
    )
    x[1, 1] = np.nan
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(infer_request(x), timeout=10)
    assert (
        caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        and "non-finite" in caught.value.details()
    )
