"""Token file, the start-up security policy, certificate reloading and the metrics endpoint,
in-process (the gRPC paths are in tests/e2e/test_security.py)."""

from __future__ import annotations

import logging
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import prometheus_client
import pytest

from datasentinel.engine.security.auth import (
    UNAUTHENTICATED_MESSAGE,
    TokenFile,
    TokenFileError,
    _denial,
    bearer_token,
    parse_tokens,
)
from datasentinel.engine.security.policy import (
    SecurityConfigError,
    check_security,
    exposure_problems,
    is_loopback,
)
from datasentinel.engine.security.tls import CertificateFiles, TLSConfigError
from datasentinel.engine.settings import EngineSettings
from tests.pki import PKI, make_pki


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def settings(**values) -> EngineSettings:
    return EngineSettings(_cli_parse_args=False, **values)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_token_file_format():
    assert parse_tokens("# comment\n\n  a-token  \n#b\nsecond\n") == ["a-token", "second"]
    assert bearer_token("Bearer abc") == "abc" and bearer_token(b"bearer  abc ") == "abc"
    for value in (None, "", "abc", "Basic abc", "Bearer ", "Bearer"):
        assert bearer_token(value) is None


def test_token_file_accepts_only_its_tokens(tmp_path):
    path = tmp_path / "tokens"
    path.write_text("first\n# not-a-token\nsecond\n")
    tokens = TokenFile(path)
    assert tokens.accepts_header("Bearer first") and tokens.accepts_header("Bearer second")
    for header in (None, "", "first", "Bearer firs", "Bearer first2", "Bearer # not-a-token"):
        assert not tokens.accepts_header(header), header


def test_token_file_is_reread_when_it_changes_and_keeps_tokens_over_an_empty_file(tmp_path):
    path, clock = tmp_path / "tokens", Clock()
    path.write_text("old\n")
    tokens = TokenFile(path, clock=clock)
    path.write_text("new-token\n")
    clock.now += 2
    assert tokens.accepts("new-token") and not tokens.accepts("old")
    path.write_text("# emptied while being rewritten\n")
    clock.now += 2
    assert tokens.accepts("new-token")  # an empty file does not lock everyone out
    path.unlink()
    clock.now += 2
    assert tokens.accepts("new-token")


def test_token_file_without_a_token_stops_the_start(tmp_path):
    path = tmp_path / "tokens"
    path.write_text("# nothing yet\n")
    with pytest.raises(TokenFileError, match="holds no token"):
        TokenFile(path)
    with pytest.raises(TokenFileError, match="cannot read"):
        TokenFile(tmp_path / "missing")


def test_a_refusal_never_asks_for_the_message():
    """Request-streaming whatever the method: gRPC reads a unary call's whole message before its
    handler runs, a streaming handler's only when it asks (and the denial never asks)."""
    for method in ("/datasentinel.v1.AnomalyScorer/Score", "/no.Such/Method"):
        denial = _denial(method)
        assert denial.request_streaming and denial.stream_unary is not None
    assert "PRODUCER_AUTH_TOKEN_FILE" in UNAUTHENTICATED_MESSAGE


def test_loopback_detection():
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "10.1.2.3", "192.168.0.1", "no-such-host.invalid"):
        assert not is_loopback(host), host


def test_defaults_listen_on_loopback_only():
    defaults = settings()
    assert defaults.bind_host == "127.0.0.1" and defaults.metrics_bind_host == "127.0.0.1"
    assert exposure_problems(defaults) == []


def test_exposure_is_a_warning_and_with_require_auth_a_refusal(caplog, pki, tmp_path):
    exposed = settings(bind_host="0.0.0.0", metrics_bind_host="0.0.0.0")
    with caplog.at_level(logging.WARNING):
        check_security(exposed)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3 and all(w.startswith("INSECURE") for w in warnings)
    with pytest.raises(SecurityConfigError, match="refusing to start"):
        check_security(exposed.model_copy(update={"require_auth": True}))
    tokens = tmp_path / "tokens"
    tokens.write_text("t\n")
    protected = exposed.model_copy(
        update={
            "require_auth": True,
            "tls_cert_file": pki.pem("server"),
            "tls_key_file": pki.key("server"),
            "auth_token_file": tokens,
            "metrics_require_token": True,
        }
    )
    check_security(protected)  # nothing exposed unprotected: starts
    mutual = protected.model_copy(
        update={"auth_token_file": None, "metrics_port": -1, "metrics_require_token": False}
    )
    assert exposure_problems(mutual) != []  # no client authentication
    check_security(mutual.model_copy(update={"tls_client_ca_file": pki.pem("ca")}))


def test_contradicting_security_settings_stop_the_start(pki):
    for values, needs in (
        ({"tls_cert_file": pki.pem("server")}, "ENGINE_TLS_KEY_FILE"),
        ({"tls_key_file": pki.key("server")}, "ENGINE_TLS_CERT_FILE"),
        ({"tls_client_ca_file": pki.pem("ca")}, "ENGINE_TLS_CERT_FILE"),
        ({"metrics_require_token": True}, "ENGINE_AUTH_TOKEN_FILE"),
    ):
        with pytest.raises(SecurityConfigError, match=needs):
            check_security(settings(**values))
    with pytest.raises(TLSConfigError, match="cannot read ENGINE_TLS_KEY_FILE"):
        check_security(settings(tls_cert_file=pki.pem("server"), tls_key_file=Path("/nonexist")))


def test_certificate_files_are_reread_only_when_they_change(pki, tmp_path):
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    cert.write_bytes(pki.read("server"))
    key.write_bytes(pki.read_key("server"))
    files = CertificateFiles(cert, key, None)
    assert files.fetch() is None  # unchanged: grpc keeps the current configuration
    cert.write_bytes(b"")  # half-written
    assert files.fetch() is None
    cert.write_bytes(pki.read("other-server"))
    key.write_bytes(pki.read_key("other-server"))
    os.utime(cert, ns=(1, 1))  # a different mtime even on a coarse clock
    assert isinstance(files.fetch(), grpc.ServerCertificateConfiguration)
    assert files.fetch() is None


@pytest.fixture
def metrics_server(tmp_path):
    from datasentinel.engine.metrics.endpoint import serve_metrics

    tokens = tmp_path / "tokens"
    tokens.write_text("metrics-token\n")
    registry = prometheus_client.CollectorRegistry()
    prometheus_client.Counter("probe_total", "a probe", registry=registry).inc()
    server = serve_metrics(
        settings(
            metrics_port=0,
            auth_token_file=tokens,
            metrics_require_token=True,
            metrics_idle_timeout_seconds=0.3,
        ),
        registry,
    )
    yield server
    server.shutdown()
    server.server_close()


def _status(port: int, token: str | None) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            assert b"probe_total 1.0" in response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_metrics_token_accept_and_refuse(metrics_server):
    port = metrics_server.server_port
    assert metrics_server.server_address[0] == "127.0.0.1"
    assert _status(port, "metrics-token") == 200
    assert _status(port, None) == 401 and _status(port, "wrong") == 401


def test_metrics_close_idle_connections(metrics_server):
    """An idle connection is closed by the server (before: held open, one thread each)."""
    with socket.create_connection(("127.0.0.1", metrics_server.server_port)) as idle:
        idle.settimeout(20)  # far above the server's 0.3 s: only a hang reaches it
        assert idle.recv(1) == b""  # closed by the server
