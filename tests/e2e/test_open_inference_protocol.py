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
    # An older model (no severity table, no expected output) lists what it can give.
    assert got["outputs"] == [
        "score",
        "is_anomaly",
        "feature_errors",
        "missing",
        "top_features",
        "top_feature_shares",
    ]
    assert got["id"] == "r1"
    # Triton's config, index and statistics calls: what perf_analyzer reads before it sends.
    assert got["config"]["max_batch_size"] == 4096
    assert got["config"]["platform"] == "onnxruntime_onnx"
    assert got["config"]["input"] == [
        {"name": "features", "data_type": "TYPE_FP32", "dims": [str(model.dim)]}
    ]
    assert got["config"]["outputs"]["score"] == ["1"]
    assert got["config"]["outputs"]["feature_errors"] == [str(model.dim)]
    assert json.loads(got["config"]["feature_names"]) == [f"f{i}" for i in range(model.dim)]
    assert got["index"] == [{"name": "datasentinel", "version": "tiny-1", "state": "READY"}]
    assert got["inference_count_after"] - got["inference_count_before"] == 100  # two infers
    assert got["success_count"] >= 1
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


def test_model_metadata_names_the_features(stub, served):
    metadata = stub.ModelMetadata(oip.ModelMetadataRequest(name="datasentinel"), timeout=10)
    names = json.loads(metadata.parameters["feature_names"].string_param)
    assert names == [f"f{i}" for i in range(served[0].dim)]


def test_config_and_statistics_of_an_unknown_model_are_not_found(stub):
    for call, request in (
        (stub.ModelConfig, oip.ModelConfigRequest(name="other")),
        (stub.ModelStatistics, oip.ModelStatisticsRequest(name="other")),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            call(request, timeout=10)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    ready_only = stub.RepositoryIndex(oip.RepositoryIndexRequest(ready=True), timeout=10)
    assert [m.name for m in ready_only.models] == ["datasentinel"]


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


def test_an_oip_request_with_both_raw_bytes_and_contents_is_refused(stub, served):
    x = np.zeros((2, served[0].dim), np.float32)
    request = infer_request(x)
    request.inputs[0].contents.fp32_contents.extend(np.ones(x.size, np.float32))
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "both raw_input_contents (48 bytes) and contents (12 fp32_contents values)" in (
        caught.value.details()
    )
    assert "either as raw_input_contents" in caught.value.details()
    # In a stream: that request gets its own error, the next one its answer.
    answers = list(stub.ModelStreamInfer(iter([request, infer_request(x)]), timeout=10))
    assert "ambiguous" in answers[0].error_message and not answers[1].error_message
    assert len(answers[1].infer_response.raw_output_contents) == 2


def output(response, name):
    """One output of a response as numpy (FP32 or BOOL), by name."""
    for tensor, raw in zip(response.outputs, response.raw_output_contents, strict=True):
        if tensor.name == name:
            dtype = "<f4" if tensor.datatype == "FP32" else np.bool_
            return np.frombuffer(raw, dtype).reshape(tensor.shape)
    raise KeyError(name)


def outputs(*names):
    return [oip.ModelInferRequest.InferRequestedOutputTensor(name=n) for n in names]


def test_an_old_model_has_no_severity_and_says_to_retrain(stub, served):
    x = np.zeros((2, served[0].dim), np.float32)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(infer_request(x, outputs=outputs("score", "severity")), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown outputs ['severity']" in caught.value.details()
    assert "retrain" in caught.value.details()


@pytest.fixture(scope="module")
def served_v3(tmp_path_factory):
    """A schema-3 model (NaN filled in, expected output, severity table) behind a real engine."""
    from tests.conftest import build_tiny_model, spawn_engine, wait_serving

    model = build_tiny_model(
        tmp_path_factory.mktemp("models"), dim=6, threshold=0.4, version="v3", v3_extras=True
    )
    engine = spawn_engine(model.dir)
    wait_serving(engine)
    yield model, engine
    engine.stop()


@pytest.fixture
def stub_v3(served_v3):
    with served_v3[1].channel() as channel:
        yield oip_grpc.GRPCInferenceServiceStub(channel)


def test_tritonclient_gets_a_requests_threshold_and_named_top_features(served_v3, tmp_path):
    model, engine = served_v3
    x = np.random.default_rng(9).normal(scale=3, size=(40, model.dim)).astype(np.float32)
    x += model.mean
    np.save(tmp_path / "x.npy", x)
    probe = subprocess.run(
        [sys.executable, str(HERE / "triton_client_probe.py"), str(engine.port)]
        + [str(tmp_path / "x.npy"), "explain"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    got = json.loads(probe.stdout)
    scores, errors = model.expected(x)
    assert got["parameters"]["threshold"] == 2.5
    assert got["is_anomaly"] == (np.array(got["score"]) > 2.5).tolist()
    assert any(got["is_anomaly"]) and not all(got["is_anomaly"])
    assert got["model_version"] == "v3"
    names = [f"f{i}" for i in range(model.dim)]
    top2 = [[names[i] for i in row] for row in np.argsort(-errors, axis=1)[:, :2]]
    assert got["top_features"] == top2
    shares = np.array(got["top_feature_shares"])
    np.testing.assert_allclose(
        shares, np.sort(errors, axis=1)[:, ::-1][:, :2] / errors.sum(1, keepdims=True), rtol=1e-4
    )
    assert np.array(got["missing"]).shape == (40, model.dim) and not np.any(got["missing"])
    order = np.argsort(got["score"])
    assert np.all(np.diff(np.array(got["severity"])[order]) >= 0)
    assert got["expected_shape"] == [40, model.dim]
    assert got["outputs"] == [
        "score",
        "is_anomaly",
        "feature_errors",
        "severity",
        "expected",
        "missing",
        "top_features",
        "top_feature_shares",
    ]


def test_nan_is_accepted_and_reported_missing_inf_is_refused(stub_v3, served_v3):
    model = served_v3[0]
    x = np.tile(model.mean, (3, 1)).astype(np.float32)
    x[0, 0] += 10
    x[1, 2] = np.nan
    wanted = outputs("score", "missing", "expected", "top_features")
    response = stub_v3.ModelInfer(infer_request(x, outputs=wanted), timeout=10)
    missing = output(response, "missing")
    assert missing.tolist() == np.isnan(x).tolist()
    np.testing.assert_allclose(output(response, "expected"), model.reconstruction(x), atol=1e-5)
    np.testing.assert_allclose(output(response, "score"), model.expected(x)[0], rtol=1e-5)
    assert response.outputs[3].shape == [3, 3]  # the default top_features: 3
    x[2, 1] = np.inf
    with pytest.raises(grpc.RpcError) as caught:
        stub_v3.ModelInfer(infer_request(x), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        "feature 'f1'" in caught.value.details()
        and "Inf cannot be scored" in caught.value.details()
    )


def with_parameters(request, **values):
    for name, (kind, value) in values.items():
        setattr(request.parameters[name], kind, value)
    return request


def test_a_requests_threshold_changes_the_flags_and_is_reported(stub_v3, served_v3):
    x = np.random.default_rng(2).normal(scale=2, size=(30, served_v3[0].dim)).astype(np.float32)
    default = stub_v3.ModelInfer(infer_request(x), timeout=10)
    scores = output(default, "score")
    assert default.parameters["threshold"].double_param == pytest.approx(0.4)
    for kind, value in (("double_param", 1.5), ("int64_param", 2)):
        request = with_parameters(infer_request(x), threshold=(kind, value))
        answer = stub_v3.ModelInfer(request, timeout=10)
        assert answer.parameters["threshold"].double_param == value
        assert output(answer, "is_anomaly").tolist() == (scores > value).tolist()
    assert (scores > 0.4).sum() > (scores > 2).sum() > 0


BAD_PARAMETERS = {
    "negative threshold": (dict(threshold=("double_param", -1.0)), "threshold -1.0"),
    "NaN threshold": (dict(threshold=("double_param", float("nan"))), "threshold nan"),
    "text threshold": (dict(threshold=("string_param", "high")), "must be a number"),
    "too many top features": (dict(top_features=("int64_param", 7)), "top_features 7"),
    "fractional top features": (dict(top_features=("double_param", 1.5)), "an integer"),
}


@pytest.mark.parametrize("case", BAD_PARAMETERS, ids=list(BAD_PARAMETERS))
def test_bad_parameters_are_refused_with_what_to_send(stub_v3, served_v3, case):
    values, message = BAD_PARAMETERS[case]
    x = np.zeros((2, served_v3[0].dim), np.float32)
    request = with_parameters(infer_request(x, outputs=outputs("top_features")), **values)
    with pytest.raises(grpc.RpcError) as caught:
        stub_v3.ModelInfer(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in caught.value.details()


def test_the_engines_threshold_is_in_force_and_tags_the_version_everywhere(served_v3):
    """ENGINE_THRESHOLD on a real engine: answers, ModelInfo, OIP metadata and the model-info
    metric all name the served version, VERSION+threshold=X."""
    import urllib.request

    from tests.conftest import spawn_engine, wait_serving

    engine = spawn_engine(served_v3[0].dir, env={"ENGINE_THRESHOLD": "1.5"})
    try:
        wait_serving(engine)
        x = np.random.default_rng(4).normal(scale=2, size=(20, 6)).astype(np.float32)
        with engine.channel() as channel:
            info = pb_grpc.AnomalyScorerStub(channel).GetModelInfo(pb.GetModelInfoRequest())
            answer = oip_grpc.GRPCInferenceServiceStub(channel).ModelInfer(infer_request(x))
            metadata = oip_grpc.GRPCInferenceServiceStub(channel).ModelMetadata(
                oip.ModelMetadataRequest(name="datasentinel")
            )
        assert (info.threshold, info.model_version) == (1.5, "v3+threshold=1.5")
        assert answer.model_version == "v3+threshold=1.5"
        assert answer.parameters["threshold"].double_param == 1.5
        assert output(answer, "is_anomaly").tolist() == (output(answer, "score") > 1.5).tolist()
        assert list(metadata.versions) == ["v3+threshold=1.5"]
        url = f"http://127.0.0.1:{engine.metrics_port}/metrics"
        text = urllib.request.urlopen(url, timeout=10).read().decode()
        assert 'datasentinel_model_info{execution_provider="CPUExecutionProvider",' in text
        assert 'model_version="v3+threshold=1.5"} 1.0' in text
    finally:
        engine.stop()
