"""TLS, mutual TLS and bearer tokens against a real engine process: each setting on its accept
and its refuse path. Certificates are made for the session with openssl (tests/pki.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from datasentinel.engine import healthcheck
from datasentinel.oip import grpc_predict_v2_pb2 as oip
from datasentinel.oip import grpc_predict_v2_pb2_grpc as oip_grpc
from datasentinel.v1 import scoring_pb2 as pb
from datasentinel.v1 import scoring_pb2_grpc as pb_grpc
from tests.conftest import SERVICE, build_tiny_model
from tests.pki import PKI, make_pki

HERE = Path(__file__).parent
TOKEN = "s3cret-token-for-tests"
REQUEST = pb.ScoreRequest(
    ids=[1, 2], raw=pb.RawVectors(data=np.ones((2, 8), "<f4").tobytes(), rows=2, cols=8)
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models"), dim=8).dir


def tls(pki: PKI, ca: str = "ca", client: str | None = None) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        pki.read(ca),
        private_key=pki.read_key(client) if client else None,
        certificate_chain=pki.read(client) if client else None,
    )


def with_token(credentials: grpc.ChannelCredentials, token: str = TOKEN):
    return grpc.composite_channel_credentials(
        credentials, grpc.access_token_call_credentials(token)
    )


def health(address: str, credentials: grpc.ChannelCredentials | None) -> str:
    """SERVING, or the status code name of the failed check."""
    channel = (
        grpc.secure_channel(address, credentials) if credentials else grpc.insecure_channel(address)
    )
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=SERVICE), timeout=5
            )
        except grpc.RpcError as exc:
            return exc.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def score(address: str, credentials: grpc.ChannelCredentials) -> pb.ScoreResponse:
    with grpc.secure_channel(address, credentials) as channel:
        return pb_grpc.AnomalyScorerStub(channel).Score(REQUEST, timeout=10)


def refused(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


@pytest.fixture(scope="module")
def secured(pki, model_dir, tmp_path_factory):
    """TLS + token; metrics on 127.0.0.2 behind the token, idle connections closed at 0.5 s."""
    from tests.conftest import spawn_engine, wait_serving

    tokens = tmp_path_factory.mktemp("auth") / "tokens"
    tokens.write_text(f"# accepted tokens\n\nother-token\n{TOKEN}\n")
    engine = spawn_engine(
        model_dir,
        "--tls-cert-file", str(pki.pem("server")), "--tls-key-file", str(pki.key("server")),
        "--auth-token-file", str(tokens), "--metrics-bind-host", "127.0.0.2",
        "--metrics-require-token", "--metrics-idle-timeout-seconds", "0.5",
        credentials=tls(pki),
    )  # fmt: skip
    wait_serving(engine)
    yield engine
    engine.stop()


def test_right_token_over_tls_is_served_on_every_service(secured, pki):
    credentials = with_token(tls(pki))
    assert list(score(secured.address, credentials).ids) == [1, 2]
    with grpc.secure_channel(secured.address, credentials) as channel:
        stream = pb_grpc.AnomalyScorerStub(channel).ScoreStream(iter([REQUEST]), timeout=10)
        assert [answer.WhichOneof("outcome") for answer in stream] == ["result"]
        ready = oip_grpc.GRPCInferenceServiceStub(channel).ModelReady(
            oip.ModelReadyRequest(name="datasentinel"), timeout=10
        )
        assert ready.ready
        answers = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
        services = {s.name for s in next(answers).list_services_response.service}
    assert SERVICE in services


@pytest.mark.parametrize("token", [None, "wrong-token", f"{TOKEN}x", ""])
def test_missing_or_wrong_token_is_unauthenticated_on_every_service(secured, pki, token):
    credentials = tls(pki) if token is None else with_token(tls(pki), token)
    with grpc.secure_channel(secured.address, credentials) as channel:
        calls = {
            "Score": lambda: pb_grpc.AnomalyScorerStub(channel).Score(REQUEST, timeout=10),
            "ScoreStream": lambda: list(
                pb_grpc.AnomalyScorerStub(channel).ScoreStream(iter([REQUEST]), timeout=10)
            ),
            "OIP ModelInfer": lambda: oip_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
                oip.ModelInferRequest(model_name="datasentinel"), timeout=10
            ),
            "reflection": lambda: list(
                reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                    iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
                )
            ),
        }
        for name, call in calls.items():
            error = refused(call)
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED, name
            assert "authorization: Bearer <token>" in error.details()
            assert "PRODUCER_AUTH_TOKEN_FILE" in error.details()
            assert TOKEN not in error.details() and "other-token" not in error.details()


def test_health_needs_no_token_and_the_compose_healthcheck_speaks_tls(
    secured, pki, monkeypatch, capsys
):
    assert health(secured.address, tls(pki)) == "SERVING"
    monkeypatch.setenv("ENGINE_PORT", str(secured.port))
    monkeypatch.setenv("ENGINE_TLS_CERT_FILE", str(pki.pem("server")))
    monkeypatch.setenv("ENGINE_HEALTHCHECK_CA_FILE", str(pki.pem("ca")))
    assert healthcheck.main([]) == 0
    monkeypatch.setenv("ENGINE_HEALTHCHECK_CA_FILE", str(pki.pem("other-ca")))
    assert healthcheck.main([]) == 1  # a certificate it cannot verify is not "healthy"
    monkeypatch.delenv("ENGINE_TLS_CERT_FILE")
    assert healthcheck.main([]) == 1  # plain text against TLS
    assert "SERVING" in capsys.readouterr().out


OPEN_PROBES = {
    "ServerLive": oip.ServerLiveRequest(),
    "ServerReady": oip.ServerReadyRequest(),
    "ModelReady": oip.ModelReadyRequest(name="datasentinel"),
}
GUARDED_MODEL_CALLS = {
    "ServerMetadata": oip.ServerMetadataRequest(),
    "ModelMetadata": oip.ModelMetadataRequest(name="datasentinel"),
    "ModelConfig": oip.ModelConfigRequest(name="datasentinel"),
    "ModelStatistics": oip.ModelStatisticsRequest(name="datasentinel"),
    "RepositoryIndex": oip.RepositoryIndexRequest(),
}


def test_oip_probes_need_no_token_but_model_facts_do(secured, pki):
    """Live/ready answer a stranger as the health service does (one boolean); the model's
    metadata, configuration, statistics and the repository stay behind the token."""
    with grpc.secure_channel(secured.address, tls(pki)) as channel:
        stub = oip_grpc.GRPCInferenceServiceStub(channel)
        for rpc, request in OPEN_PROBES.items():
            answer = getattr(stub, rpc)(request, timeout=10)
            assert answer.ListFields()[0][1] is True, rpc
        for rpc, request in GUARDED_MODEL_CALLS.items():
            error = refused(lambda: getattr(stub, rpc)(request, timeout=10))  # noqa: B023
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED, rpc
    with grpc.secure_channel(secured.address, with_token(tls(pki))) as channel:
        stub = oip_grpc.GRPCInferenceServiceStub(channel)
        for rpc, request in GUARDED_MODEL_CALLS.items():
            assert getattr(stub, rpc)(request, timeout=10).ByteSize() > 0, rpc


def test_plain_text_or_an_unknown_ca_cannot_reach_a_tls_engine(secured, pki):
    assert health(secured.address, None) == "UNAVAILABLE"
    assert health(secured.address, tls(pki, ca="other-ca")) == "UNAVAILABLE"


def test_tritonclient_authenticates_with_a_header(secured, pki):
    probe = subprocess.run(
        [sys.executable, str(HERE / "triton_auth_probe.py"), str(secured.port),
         str(pki.pem("ca")), TOKEN],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    got = json.loads(probe.stdout)
    assert got["ready"] and got["n_scores"] == 2
    assert got["open_probes"] == [True, True, True, True]
    assert got["config_max_batch_size"] > 0
    for refused_case in (
        "no_header",
        "wrong_token",
        "config_no_header",
        "statistics_no_header",
        "index_no_header",
    ):
        assert got[refused_case].startswith("StatusCode.UNAUTHENTICATED"), got
        assert "authorization: Bearer" in got[refused_case]


def _get(url: str, token: str | None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_on_their_own_address_require_the_token(secured):
    assert "metrics on http://127.0.0.2:" in secured.log()
    url = f"http://127.0.0.2:{secured.metrics_port}/metrics"
    for token in (None, "wrong-token"):
        status, body = _get(url, token)
        assert status == 401 and "Authorization: Bearer" in body and TOKEN not in body
    status, body = _get(url, TOKEN)
    assert status == 200 and "datasentinel_" in body


def test_producer_streams_with_tls_and_token_and_is_refused_without(secured, pki, tmp_path):
    from datasentinel.producer.app import run
    from datasentinel.producer.errors import EngineNotReady
    from datasentinel.producer.settings import ProducerSettings

    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n")
    base = dict(
        engine_host="127.0.0.1", engine_port=secured.port, count=300, batch_size=64, show="none",
        tls_ca_file=pki.pem("ca"), ready_timeout=10,
    )  # fmt: skip
    result = run(ProducerSettings(**base, auth_token_file=token_file), out=open(os.devnull, "w"))
    assert result.answered == 300 and result.exit_code == 0
    with pytest.raises(EngineNotReady, match="UNAUTHENTICATED.*PRODUCER_AUTH_TOKEN_FILE"):
        run(ProducerSettings(**base), out=open(os.devnull, "w"))


@pytest.fixture(scope="module")
def mutual(pki, model_dir):
    """Mutual TLS (client CA = ca), no token, reflection off."""
    from tests.conftest import spawn_engine, wait_serving

    engine = spawn_engine(
        model_dir,
        "--tls-cert-file", str(pki.pem("server")), "--tls-key-file", str(pki.key("server")),
        "--tls-client-ca-file", str(pki.pem("ca")), "--no-reflection",
        credentials=tls(pki, client="client"),
    )  # fmt: skip
    wait_serving(engine)
    yield engine
    engine.stop()


def test_mutual_tls_accepts_only_clients_of_its_ca(mutual, pki):
    assert health(mutual.address, tls(pki)) == "UNAVAILABLE"  # no client certificate
    assert health(mutual.address, tls(pki, client="other-client")) == "UNAVAILABLE"
    assert list(score(mutual.address, tls(pki, client="client")).ids) == [1, 2]


def test_reflection_can_be_turned_off(mutual, pki):
    with grpc.secure_channel(mutual.address, tls(pki, client="client")) as channel:
        error = refused(
            lambda: list(
                reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                    iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
                )
            )
        )
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED


def test_healthcheck_presents_its_client_certificate_for_mutual_tls(mutual, pki, monkeypatch):
    monkeypatch.setenv("ENGINE_PORT", str(mutual.port))
    monkeypatch.setenv("ENGINE_TLS_CERT_FILE", str(pki.pem("server")))
    monkeypatch.setenv("ENGINE_HEALTHCHECK_CA_FILE", str(pki.pem("ca")))
    assert healthcheck.main([]) == 1
    monkeypatch.setenv("ENGINE_HEALTHCHECK_CERT_FILE", str(pki.pem("client")))
    monkeypatch.setenv("ENGINE_HEALTHCHECK_KEY_FILE", str(pki.key("client")))
    assert healthcheck.main([]) == 0


def _replace(path: Path, data: bytes) -> None:
    """As a rotation does: write aside, then rename over (never a half-written file)."""
    aside = path.with_suffix(".new")
    aside.write_bytes(data)
    os.replace(aside, path)


def _eventually(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_certificate_and_token_rotation_need_no_restart(pki, model_dir, tmp_path, start_engine):
    live = tmp_path / "live"
    live.mkdir()
    for name in ("server.pem", "server.key"):
        (live / name).write_bytes((pki.dir / name).read_bytes())
    tokens = live / "tokens"
    tokens.write_text("old-token\n")
    engine = start_engine(
        model_dir,
        "--tls-cert-file", str(live / "server.pem"), "--tls-key-file", str(live / "server.key"),
        "--auth-token-file", str(tokens), "--workers", "1",
        credentials=tls(pki),
    )  # fmt: skip
    assert score(engine.address, with_token(tls(pki), "old-token")).ids
    # A certificate from the other CA: new connections get it, no restart.
    _replace(live / "server.key", pki.read_key("other-server"))
    _replace(live / "server.pem", pki.read("other-server"))
    assert _eventually(lambda: health(engine.address, tls(pki, ca="other-ca")) == "SERVING")
    assert health(engine.address, tls(pki)) == "UNAVAILABLE"
    # The old token revoked, a new one accepted.
    _replace(tokens, b"new-token\n")
    new = with_token(tls(pki, ca="other-ca"), "new-token")
    assert _eventually(lambda: _accepted(engine.address, new))
    old = with_token(tls(pki, ca="other-ca"), "old-token")
    assert _eventually(lambda: _refusal(engine.address, old) == "UNAUTHENTICATED")
    for _ in range(5):  # and stays refused
        assert _refusal(engine.address, old) == "UNAUTHENTICATED"
    assert engine.process.poll() is None and "TLS certificate files changed" in engine.log()


def _refusal(address: str, credentials) -> str:
    try:
        score(address, credentials)
    except grpc.RpcError as exc:
        return exc.code().name
    return "accepted"


def _accepted(address: str, credentials) -> bool:
    try:
        return bool(score(address, credentials).ids)
    except grpc.RpcError:
        return False


def test_require_auth_refuses_to_serve_the_network_unprotected(model_dir, start_engine):
    engine = start_engine(model_dir, "--bind-host", "0.0.0.0", "--require-auth", wait=False)
    assert engine.process.wait(60) == 2
    errors = [line for line in engine.lines if " ERROR " in line]
    assert len(errors) == 1 and "refusing to start (ENGINE_REQUIRE_AUTH is set)" in errors[0]
    assert "ENGINE_TLS_CERT_FILE" in errors[0] and "ENGINE_AUTH_TOKEN_FILE" in errors[0]
    assert not engine.port  # never listened


def test_require_auth_serves_loopback_and_bad_security_files_stop_the_start(
    model_dir, start_engine, tmp_path, pki
):
    engine = start_engine(model_dir, "--require-auth")  # 127.0.0.1: nothing exposed
    assert health(engine.address, None) == "SERVING"
    empty = tmp_path / "empty-tokens"
    empty.write_text("# no token yet\n")
    bad = start_engine(model_dir, "--auth-token-file", str(empty), wait=False)
    assert bad.process.wait(60) == 2 and "holds no token" in bad.log()
    half = start_engine(model_dir, "--tls-cert-file", str(pki.pem("server")), wait=False)
    assert half.process.wait(60) == 2 and "ENGINE_TLS_KEY_FILE" in half.log()
