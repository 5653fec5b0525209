"""The REST/JSON Open Inference Protocol port against a real engine process with TLS and a
token: the same rows scored as over gRPC with the same results (urllib and tritonclient.http),
probes open, and each refusal path (no token, too large, over the call budget, bad JSON)
answered with its status and counted like gRPC's."""

from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest

from datasentinel.oip import grpc_predict_v2_pb2 as oip
from datasentinel.oip import grpc_predict_v2_pb2_grpc as oip_grpc
from datasentinel.v1 import scoring_pb2 as pb
from datasentinel.v1 import scoring_pb2_grpc as pb_grpc
from tests.conftest import build_tiny_model
from tests.pki import PKI, make_pki

HERE = Path(__file__).parent
TOKEN = "rest-token-for-tests"
DIM = 6


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("models"), dim=DIM, threshold=0.4)


@pytest.fixture(scope="module")
def engine(pki, model, tmp_path_factory):
    """TLS + token on both ports; 1 MiB messages; 2 calls per client address."""
    from tests.conftest import spawn_engine, wait_serving

    tokens = tmp_path_factory.mktemp("auth") / "tokens"
    tokens.write_text(f"{TOKEN}\n")
    credentials = grpc.composite_channel_credentials(
        grpc.ssl_channel_credentials(pki.read("ca")), grpc.access_token_call_credentials(TOKEN)
    )
    engine = spawn_engine(
        model.dir,
        "--tls-cert-file", str(pki.pem("server")), "--tls-key-file", str(pki.key("server")),
        "--auth-token-file", str(tokens), "--http-port", "0", "--max-message-mb", "1",
        "--max-calls-per-peer", "2", "--workers", "1",
        credentials=credentials,
    )  # fmt: skip
    wait_serving(engine)
    assert engine.http_port, engine.log()
    yield engine
    engine.stop()


def call(engine, pki, path, body=None, token=TOKEN, headers=None):
    """(status, headers, body) of one HTTPS request to the REST port."""
    request = urllib.request.Request(
        f"https://127.0.0.1:{engine.http_port}{path}",
        data=body,
        method="POST" if body is not None else "GET",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    context = ssl.create_default_context(cafile=str(pki.pem("ca")))
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def infer_body(x: np.ndarray, **extra) -> bytes:
    tensor = {"name": "features", "datatype": "FP32", "shape": list(x.shape), "data": x.tolist()}
    return json.dumps({"inputs": [tensor], **extra}).encode()


def grpc_scores(engine, x):
    with engine.channel() as channel:
        ours = pb_grpc.AnomalyScorerStub(channel).Score(
            pb.ScoreRequest(
                ids=range(len(x)), raw=pb.RawVectors(data=x.tobytes(), rows=len(x), cols=DIM)
            ),
            timeout=10,
        )
        tensor = oip.ModelInferRequest.InferInputTensor(
            name="features", datatype="FP32", shape=x.shape
        )
        theirs = oip_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
            oip.ModelInferRequest(
                model_name="datasentinel", inputs=[tensor], raw_input_contents=[x.tobytes()]
            ),
            timeout=10,
        )
    return ours, np.frombuffer(theirs.raw_output_contents[0], "<f4")


def test_json_infer_scores_the_same_rows_as_both_grpc_apis(engine, pki):
    x = np.random.default_rng(5).normal(scale=2, size=(40, DIM)).astype(np.float32)
    status, _, body = call(engine, pki, "/v2/models/datasentinel/infer", infer_body(x, id="a"))
    assert status == 200, body
    answer = json.loads(body)
    outputs = {o["name"]: o for o in answer["outputs"]}
    ours, oip_scores = grpc_scores(engine, x)
    assert np.array(outputs["score"]["data"], np.float32).tolist() == list(ours.scores)
    assert outputs["score"]["data"] == oip_scores.tolist()
    assert outputs["is_anomaly"]["data"] == list(ours.is_anomaly)
    assert any(ours.is_anomaly) and not all(ours.is_anomaly)
    assert outputs["score"]["shape"] == [40] and outputs["score"]["datatype"] == "FP32"
    assert answer["id"] == "a" and answer["parameters"]["threshold"] == pytest.approx(0.4)


def test_tritonclient_http_scores_the_same_rows(engine, pki, tmp_path):
    x = np.random.default_rng(6).normal(scale=2, size=(30, DIM)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    probe = subprocess.run(
        [sys.executable, str(HERE / "triton_http_probe.py"), str(engine.http_port),
         str(pki.pem("ca")), TOKEN, str(tmp_path / "x.npy")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    got = json.loads(probe.stdout)
    ours, _ = grpc_scores(engine, x)
    for form in ("binary", "json"):
        assert np.array(got[form]["score"], np.float32).tolist() == list(ours.scores), form
        assert got[form]["is_anomaly"] == list(ours.is_anomaly), form
        assert got[form]["feature_errors_shape"] == [30, DIM] and got[form]["id"] == "r1"
    assert [got["live"], got["ready"], got["model_ready"]] == [True, True, True]
    assert not got["unknown_model_ready"]
    assert got["feature_names"] == [f"f{i}" for i in range(DIM)]
    assert got["outputs"][:3] == ["score", "is_anomaly", "feature_errors"]
    assert got["max_batch_size"] == 4096
    assert got["index"] == [{"name": "datasentinel", "version": "tiny-1", "state": "READY"}]
    assert got["no_header"].startswith("401")


def test_probes_are_open_and_everything_else_needs_the_token(engine, pki):
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/datasentinel/ready"):
        assert call(engine, pki, path, token=None)[0] == 200, path
    assert call(engine, pki, "/v2/models/other/ready", token=None)[0] == 400
    for path in ("/v2", "/v2/models/datasentinel", "/v2/models/datasentinel/config"):
        for token in (None, "wrong"):
            status, headers, body = call(engine, pki, path, token=token)
            assert status == 401 and "authorization: Bearer" in json.loads(body)["error"]
            assert headers["WWW-Authenticate"] == "Bearer"
    x = np.zeros((2, DIM), np.float32)
    status, _, _ = call(engine, pki, "/v2/models/datasentinel/infer", infer_body(x), token=None)
    assert status == 401
    assert call(engine, pki, "/v2", token=TOKEN)[0] == 200
    assert refused(engine, "unauthenticated") >= 7


BAD = {
    "not JSON": (b"{inputs: [", 400, "not valid JSON"),
    "not an object": (b"[1, 2]", 400, "JSON object"),
    "ragged rows": (
        json.dumps(
            {
                "inputs": [
                    {
                        "name": "features",
                        "datatype": "FP32",
                        "shape": [2, 6],
                        "data": [[1] * 6, [1] * 5],
                    }
                ]
            }
        ).encode(),
        400,
        "data must be numbers",
    ),  # fmt: skip
    "wrong width": (infer_body(np.zeros((2, 5), np.float32)), 400, "expects 6"),
    "unknown output": (
        infer_body(np.zeros((2, DIM), np.float32), outputs=[{"name": "x"}]),
        400,
        "unknown outputs ['x']",
    ),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_requests_get_400_with_the_reason(engine, pki, case):
    body, status, message = BAD[case]
    got, _, answer = call(engine, pki, "/v2/models/datasentinel/infer", body)
    assert got == status and message in json.loads(answer)["error"], answer


def test_unknown_model_or_version_is_404(engine, pki):
    x = np.zeros((1, DIM), np.float32)
    assert call(engine, pki, "/v2/models/other/infer", infer_body(x))[0] == 404
    assert call(engine, pki, "/v2/models/datasentinel/versions/v0/infer", infer_body(x))[0] == 404
    path = "/v2/models/datasentinel/versions/tiny-1/infer"
    assert call(engine, pki, path, infer_body(x))[0] == 200


def test_a_body_over_the_message_limit_is_413_and_counted(engine, pki):
    before = refused(engine, "too_large")
    x = np.zeros((50_000, DIM), np.float32)  # ~ 1.5 MB of JSON, over 1 MiB
    status, _, body = call(engine, pki, "/v2/models/datasentinel/infer", infer_body(x))
    assert status == 413 and "ENGINE_MAX_MESSAGE_MB" in json.loads(body)["error"]
    assert refused(engine, "too_large") == before + 1


def test_a_declared_length_over_the_limit_is_refused_before_the_body(engine, pki):
    """A Content-Length over the limit is answered 413 at once: the engine neither waits for
    nor reads 64 MB it is going to refuse (a client that never sends them gets its answer)."""
    import http.client

    before = refused(engine, "too_large")
    context = ssl.create_default_context(cafile=str(pki.pem("ca")))
    connection = http.client.HTTPSConnection(
        "127.0.0.1", engine.http_port, context=context, timeout=10
    )
    connection.putrequest("POST", "/v2/models/datasentinel/infer")
    for name, value in {
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": "application/json",
        "Content-Length": str(64 << 20),
    }.items():
        connection.putheader(name, value)
    connection.endheaders(b"{")  # one byte of the 64 MB declared
    response = connection.getresponse()
    assert response.status == 413 and b"ENGINE_MAX_MESSAGE_MB" in response.read()
    connection.close()
    assert refused(engine, "too_large") == before + 1


def test_a_chunked_body_over_the_limit_is_413_too(engine, pki):
    """No Content-Length to refuse up front: the limit holds while the body is read."""
    import http.client

    before = refused(engine, "too_large")
    context = ssl.create_default_context(cafile=str(pki.pem("ca")))
    connection = http.client.HTTPSConnection("127.0.0.1", engine.http_port, context=context)
    chunks = (b" " * 65536 for _ in range(24))  # 1.5 MiB of whitespace, in chunks
    headers = {"Authorization": f"Bearer {TOKEN}", "Transfer-Encoding": "chunked"}
    path = "/v2/models/datasentinel/infer"
    connection.request("POST", path, chunks, headers=headers, encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 413 and b"ENGINE_MAX_MESSAGE_MB" in response.read()
    connection.close()
    assert refused(engine, "too_large") == before + 1


def test_calls_over_a_clients_share_are_429_and_counted(engine, pki):
    """Two calls held open (headers sent, body not yet) take this address's share of 2."""
    before = refused(engine, "peer_limit")
    context = ssl.create_default_context(cafile=str(pki.pem("ca")))
    held = []
    try:
        for _ in range(2):
            raw = socket.create_connection(("127.0.0.1", engine.http_port), timeout=10)
            sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
            sock.sendall(
                b"POST /v2/models/datasentinel/infer HTTP/1.1\r\nHost: x\r\n"
                + f"Authorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n{{".encode()
            )
            held.append(sock)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            x = np.zeros((1, DIM), np.float32)
            status, _, body = call(engine, pki, "/v2/models/datasentinel/infer", infer_body(x))
            if status == 429:
                break
            time.sleep(0.05)
        assert status == 429 and "ENGINE_MAX_CALLS_PER_PEER" in json.loads(body)["error"]
    finally:
        for sock in held:
            sock.close()
    assert refused(engine, "peer_limit") > before
    x = np.zeros((1, DIM), np.float32)
    deadline = time.monotonic() + 10  # the held calls end when their connections close
    while call(engine, pki, "/v2/models/datasentinel/infer", infer_body(x))[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_rest_calls_show_in_the_same_metrics(engine, pki):
    x = np.zeros((3, DIM), np.float32)
    assert call(engine, pki, "/v2/models/datasentinel/infer", infer_body(x))[0] == 200
    text = metrics_text(engine)
    assert 'datasentinel_requests_total{code="OK",rpc="RestModelInfer"}' in text
    expiry = re.search(r"^datasentinel_tls_certificate_expiry_days (\S+)$", text, re.M)
    assert expiry and float(expiry.group(1)) > 0  # tests/pki.py: valid for days
    status, _, body = call(engine, pki, "/v2/models/datasentinel/stats")
    stats = json.loads(body)["model_stats"][0]
    assert status == 200 and stats["inference_count"] >= 3
    assert stats["inference_stats"]["success"]["count"] >= 1


def metrics_text(engine) -> str:
    url = f"http://127.0.0.1:{engine.metrics_port}/metrics"
    return urllib.request.urlopen(url, timeout=10).read().decode()


def refused(engine, reason: str) -> float:
    total = 0.0
    for line in metrics_text(engine).splitlines():
        if line.startswith("datasentinel_refused_calls_total{") and f'reason="{reason}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_every_worker_serves_rest_on_the_shared_port(model, start_engine):
    """Two workers, plain HTTP: new connections spread over both (SO_REUSEPORT); the
    supervisor's metrics sum their REST calls."""
    engine = start_engine(model.dir, "--workers", "2", "--http-port", "0")
    assert engine.http_port, engine.log()
    x = np.zeros((2, DIM), np.float32)
    for _ in range(20):  # urllib opens a new connection per request
        request = urllib.request.Request(
            f"http://127.0.0.1:{engine.http_port}/v2/models/datasentinel/infer",
            data=infer_body(x),
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
    assert 'datasentinel_requests_total{code="OK",rpc="RestModelInfer"} 20.0' in metrics_text(
        engine
    )
