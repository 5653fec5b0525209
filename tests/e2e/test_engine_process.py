"""The real engine process on a free port, driven over gRPC with the tiny test model."""

import signal
import socket
import subprocess
import sys
import threading

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from datasentinel.v1 import scoring_pb2 as pb
from datasentinel.v1 import scoring_pb2_grpc as pb_grpc
from tests.conftest import SERVICE, build_tiny_model, engine_command

MAX_ROWS = 16


def raw_request(x, ids=None, **kwargs):
    rows, cols = x.shape
    return pb.ScoreRequest(
        ids=list(range(rows)) if ids is None else ids,
        raw=pb.RawVectors(data=x.astype("<f4").tobytes(), rows=rows, cols=cols),
        **kwargs,
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from tests.conftest import spawn_engine, wait_serving

    model = build_tiny_model(tmp_path_factory.mktemp("models"))
    engine = spawn_engine(model.dir, "--max-batch-rows", str(MAX_ROWS))
    wait_serving(engine)
    channel = engine.channel()
    yield model, engine, pb_grpc.AnomalyScorerStub(channel), channel
    channel.close()
    engine.stop()


@pytest.fixture
def stub(served):
    return served[2]


def test_standard_health_client_sees_serving(served):
    channel = served[3]
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", SERVICE):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_service(served):
    services = ProtoReflectionDescriptorDatabase(served[3]).get_services()
    assert SERVICE in services
    assert "grpc.health.v1.Health" in services


def test_scores_match_the_model_and_echo_ids(served, stub):
    model = served[0]
    x = np.random.default_rng(2).normal(scale=2, size=(10, model.dim)).astype(np.float32)
    ids = [1000 + 7 * i for i in range(10)]
    reply = stub.Score(raw_request(x, ids, request_id="r1", include_feature_errors=True))
    scores, errors = model.expected(x)
    assert list(reply.ids) == ids and reply.request_id == "r1"
    np.testing.assert_allclose(reply.scores, scores, rtol=1e-5, atol=1e-6)
    assert list(reply.is_anomaly) == list(scores > model.threshold)
    assert reply.threshold == pytest.approx(model.threshold)
    assert reply.model_version == model.version
    fe = np.frombuffer(reply.feature_errors.data, "<f4").reshape(10, model.dim)
    np.testing.assert_allclose(fe, errors, rtol=1e-5, atol=1e-6)


def test_feature_errors_only_when_asked(stub, served):
    x = np.zeros((2, served[0].dim), dtype=np.float32)
    assert not stub.Score(raw_request(x)).HasField("feature_errors")


def test_hand_typed_floats_score_like_raw_bytes(stub, served):
    x = np.random.default_rng(4).normal(size=(3, served[0].dim)).astype(np.float32)
    by_floats = stub.Score(
        pb.ScoreRequest(ids=[0, 1, 2], floats=pb.FloatVectors(values=x.ravel(), cols=x.shape[1]))
    )
    np.testing.assert_array_equal(by_floats.scores, stub.Score(raw_request(x)).scores)


def test_model_info(stub, served):
    info = stub.GetModelInfo(pb.GetModelInfoRequest())
    assert info.input_dim == served[0].dim
    assert list(info.feature_names) == [f"f{i}" for i in range(served[0].dim)]
    assert info.model_version == served[0].version
    assert info.execution_provider == "CPUExecutionProvider"
    assert info.max_batch_rows == MAX_ROWS
    assert len(info.model_sha256) == 64


def nan_row(dim):
    x = np.zeros((2, dim), dtype=np.float32)
    x[1, 0] = np.nan
    return raw_request(x)


def inf_row(dim):
    x = np.zeros((2, dim), dtype=np.float32)
    x[0, 1] = np.inf
    return raw_request(x)


BAD_REQUESTS = {
    "wrong row length": (
        lambda d: raw_request(np.zeros((2, d + 1), np.float32)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "features but the model expects",
    ),
    "nan": (nan_row, grpc.StatusCode.INVALID_ARGUMENT, "non-finite"),
    "inf": (inf_row, grpc.StatusCode.INVALID_ARGUMENT, "non-finite"),
    "empty batch": (
        lambda d: raw_request(np.zeros((0, d), np.float32)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "empty batch",
    ),
    "over the maximum": (
        lambda d: raw_request(np.zeros((MAX_ROWS + 1, d), np.float32)),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "exceeds the engine's maximum",
    ),
    "bytes not matching shape": (
        lambda d: pb.ScoreRequest(ids=[0], raw=pb.RawVectors(data=b"\0" * 7, rows=1, cols=d)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "7 bytes but rows=1",
    ),
    "ids not matching rows": (
        lambda d: raw_request(np.zeros((3, d), np.float32), ids=[1]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "1 ids for 3 vectors",
    ),
    "no vectors": (
        lambda d: pb.ScoreRequest(ids=[1]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "request has no vectors",
    ),
}


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=list(BAD_REQUESTS))
def test_bad_input_gets_its_status_and_the_engine_keeps_serving(stub, served, case):
    make, code, message = BAD_REQUESTS[case]
    dim = served[0].dim
    with pytest.raises(grpc.RpcError) as caught:
        stub.Score(make(dim), timeout=10)
    assert caught.value.code() == code
    assert message in caught.value.details()
    assert len(stub.Score(raw_request(np.ones((2, dim), np.float32)), timeout=10).scores) == 2


def test_stream_answers_a_bad_message_alone_and_goes_on(stub, served):
    dim = served[0].dim

    def requests():
        for i in range(6):
            width = dim + 1 if i == 2 else dim
            x = np.full((3, width), i, dtype=np.float32)
            yield raw_request(x, ids=[10 * i, 10 * i + 1, 10 * i + 2], request_id=str(i))

    replies = list(stub.ScoreStream(requests(), timeout=30))
    assert [r.request_id for r in replies] == [str(i) for i in range(6)]
    assert [r.WhichOneof("outcome") for r in replies] == ["result"] * 2 + ["error"] + ["result"] * 3
    error = replies[2].error
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert list(error.ids) == [20, 21, 22]
    assert list(replies[5].result.ids) == [50, 51, 52]


def test_long_stream_answers_every_id_once_in_order(stub, served):
    dim = served[0].dim
    rng = np.random.default_rng(9)

    def requests():
        for i in range(200):
            x = rng.normal(size=(5, dim)).astype(np.float32)
            yield raw_request(x, ids=list(range(5 * i, 5 * i + 5)))

    answered = [i for reply in stub.ScoreStream(requests(), timeout=60) for i in reply.result.ids]
    assert answered == list(range(1000))


def run_engine(models_dir, *args, timeout=60):
    return subprocess.run(
        engine_command(models_dir, "--bind-host", "127.0.0.1", "--metrics-port", "-1", *args),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def error_lines(stderr):
    return [line for line in stderr.splitlines() if " ERROR " in line or "Traceback" in line]


def test_missing_model_exits_with_one_line_telling_to_train(tmp_path):
    result = run_engine(tmp_path / "empty", "--port", "0")
    assert result.returncode == 2
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and "run the trainer" in errors[0], result.stderr


def test_port_in_use_exits_naming_the_port(tiny_model):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_engine(tiny_model.dir, "--port", str(port))
    assert result.returncode == 2
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and f"port {port} is already in use" in errors[0], result.stderr


def test_strict_providers_refuse_to_fall_back(tiny_model):
    result = run_engine(tiny_model.dir, "--port", "0", "--strict-providers")
    assert result.returncode == 2
    assert "TensorrtExecutionProvider" in result.stderr and "strict" in result.stderr


def test_sigterm_lets_an_in_flight_stream_finish(tiny_model, start_engine):
    engine = start_engine(tiny_model.dir, "--grace-seconds", "20")
    first_answered = threading.Event()
    x = np.zeros((4, tiny_model.dim), dtype=np.float32)

    def requests():
        yield raw_request(x, ids=[0, 1, 2, 3])
        first_answered.wait(10)
        signalled.wait(10)
        for i in range(1, 20):
            yield raw_request(x, ids=[4 * i + k for k in range(4)])

    signalled = threading.Event()
    answered = []
    with engine.channel() as channel:
        replies = pb_grpc.AnomalyScorerStub(channel).ScoreStream(requests(), timeout=60)
        for reply in replies:
            answered.extend(reply.result.ids)
            if not first_answered.is_set():
                first_answered.set()
                engine.process.send_signal(signal.SIGTERM)
                signalled.set()
    assert answered == list(range(80))
    assert engine.process.wait(30) == 0
    assert "SIGTERM received" in engine.log()


def test_health_turns_not_serving_on_sigterm(tiny_model, start_engine):
    engine = start_engine(tiny_model.dir, "--grace-seconds", "20")
    with engine.channel() as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=SERVICE), timeout=30
        )
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        engine.process.send_signal(signal.SIGTERM)
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()
    assert engine.process.wait(30) == 0


def test_container_healthcheck_command_follows_serving(served):
    engine = served[1]
    probe = [sys.executable, "-m", "datasentinel.engine.healthcheck", "--port"]
    ok = subprocess.run([*probe, str(engine.port)], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and "SERVING" in ok.stdout
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: nothing answers there
        port = closed.getsockname()[1]
        down = subprocess.run([*probe, str(port)], capture_output=True, text=True, timeout=30)
    assert down.returncode == 1 and "UNAVAILABLE" in down.stdout
