"""The producer's TLS, mutual TLS and token settings, against real engine processes."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from pydantic_settings import CliApp

from datasentinel.producer.channel.channel import open_channel
from datasentinel.producer.channel.security import ClientSecurity, SecurityFileError, read_token
from datasentinel.producer.settings import ProducerSettings
from datasentinel.v1 import scoring_pb2, scoring_pb2_grpc
from tests.conftest import build_tiny_model, spawn_engine, wait_serving
from tests.pki import PKI, make_pki

TOKEN = "producer-test-token"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def token_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "token"
    path.write_text(f"# the producer sends the first token\n\n{TOKEN}\nignored\n")
    return path


@pytest.fixture
def real_engine():
    """A real engine process (tests/producer/conftest.py's real_engine is a fake one)."""
    started = []

    def start(models_dir: Path, *args: str, **kwargs):
        engine = spawn_engine(models_dir, *args, **kwargs)
        started.append(engine)
        assert engine.port, engine.log()
        wait_serving(engine)
        return engine

    yield start
    for engine in started:
        engine.stop()


def model_info(target: str, security: ClientSecurity | None) -> str:
    """The model version, or the status code name of the refusal."""
    with open_channel(target, security) as channel:
        stub = scoring_pb2_grpc.AnomalyScorerStub(channel)
        try:
            return stub.GetModelInfo(scoring_pb2.GetModelInfoRequest(), timeout=10).model_version
        except grpc.RpcError as exc:
            return exc.code().name


def test_settings_come_from_producer_env_and_flags(monkeypatch, tmp_path):
    monkeypatch.setenv("PRODUCER_TLS_CA_FILE", "/run/secrets/ca.pem")
    monkeypatch.setenv("PRODUCER_AUTH_TOKEN_FILE", "/run/secrets/token")
    argv = ["--tls-cert-file", "c.pem", "--tls-key-file", "c.key", "--tls-server-name", "engine"]
    security = ClientSecurity.from_settings(CliApp.run(ProducerSettings, cli_args=argv))
    assert security == ClientSecurity(
        tls=False,
        ca_file=Path("/run/secrets/ca.pem"),
        cert_file=Path("c.pem"),
        key_file=Path("c.key"),
        server_name="engine",
        token_file=Path("/run/secrets/token"),
    )
    assert security.uses_tls
    assert not ClientSecurity(token_file=Path("t")).uses_tls and ClientSecurity(tls=True).uses_tls


def test_token_file_first_token_is_sent(token_file, tmp_path):
    assert read_token(token_file) == TOKEN
    empty = tmp_path / "empty"
    empty.write_text("# none\n")
    with pytest.raises(SecurityFileError, match="holds no token"):
        read_token(empty)
    with pytest.raises(SecurityFileError, match="cannot read PRODUCER_AUTH_TOKEN_FILE"):
        read_token(tmp_path / "missing")


def test_token_over_plain_text_is_sent_by_an_interceptor(real_engine, tmp_path, token_file):
    """grpc refuses call credentials without TLS: the metadata still goes (loopback engine)."""
    model = build_tiny_model(tmp_path / "models")
    engine = real_engine(model.dir, "--workers", "1", "--auth-token-file", str(token_file))
    assert model_info(engine.address, ClientSecurity(token_file=token_file)) == model.version
    assert model_info(engine.address, None) == "UNAUTHENTICATED"


def test_mutual_tls_with_token_server_name_and_refusals(real_engine, tmp_path, pki, token_file):
    model = build_tiny_model(tmp_path / "models")
    engine = real_engine(
        model.dir,
        "--workers", "1",
        "--tls-cert-file", str(pki.pem("server")), "--tls-key-file", str(pki.key("server")),
        "--tls-client-ca-file", str(pki.pem("ca")), "--auth-token-file", str(token_file),
        credentials=grpc.ssl_channel_credentials(
            pki.read("ca"), pki.read_key("client"), pki.read("client")
        ),
    )  # fmt: skip
    good = ClientSecurity(
        ca_file=pki.pem("ca"),
        cert_file=pki.pem("client"),
        key_file=pki.key("client"),
        server_name="localhost",  # in the certificate; 127.0.0.1 is too
        token_file=token_file,
    )
    assert model_info(engine.address, good) == model.version
    assert model_info(engine.address, ClientSecurity(**{**good.__dict__, "token_file": None})) == (
        "UNAUTHENTICATED"
    )
    for wrong in (
        {"server_name": "not-the-engine.invalid"},
        {"cert_file": None, "key_file": None},
        {"cert_file": pki.pem("other-client"), "key_file": pki.key("other-client")},
        {"ca_file": pki.pem("other-ca")},
    ):
        assert model_info(engine.address, ClientSecurity(**{**good.__dict__, **wrong})) == (
            "UNAVAILABLE"
        ), wrong
    with pytest.raises(SecurityFileError, match="PRODUCER_TLS_KEY_FILE"):
        open_channel(engine.address, ClientSecurity(**{**good.__dict__, "key_file": None}))
