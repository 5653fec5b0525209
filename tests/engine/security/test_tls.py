"""TLS for the gRPC port: which files it reads, when it rereads them, and what a port bound with
it accepts (a real grpc.aio server on 127.0.0.1; the engine's own TLS paths are in
tests/e2e/test_security.py, the certificate rotation of CertificateFiles in test_auth.py)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import grpc
import pytest

from datasentinel.engine.errors import EngineError
from datasentinel.engine.security.tls import (
    CertificateFiles,
    TLSConfigError,
    add_port,
    read_file,
    server_credentials,
)
from datasentinel.engine.settings import EngineSettings
from tests.pki import PKI, make_pki


def settings(**values) -> EngineSettings:
    return EngineSettings(_cli_parse_args=False, **values)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_settings(pki: PKI, mutual: bool = False) -> EngineSettings:
    return settings(
        tls_cert_file=pki.pem("server"),
        tls_key_file=pki.key("server"),
        tls_client_ca_file=pki.pem("ca") if mutual else None,
    )


# --- Reading the files ----------------------------------------------------------------------


def test_read_file_returns_the_bytes(pki):
    assert read_file(pki.pem("ca"), "ENGINE_TLS_CLIENT_CA_FILE") == pki.read("ca")


def test_a_missing_or_empty_file_is_a_tls_config_error_naming_the_setting(tmp_path):
    with pytest.raises(TLSConfigError, match="cannot read ENGINE_TLS_CERT_FILE .*missing"):
        read_file(tmp_path / "missing", "ENGINE_TLS_CERT_FILE")
    empty = tmp_path / "empty.pem"
    empty.write_text("\n")
    with pytest.raises(TLSConfigError, match="ENGINE_TLS_KEY_FILE .* is empty"):
        read_file(empty, "ENGINE_TLS_KEY_FILE")
    assert issubclass(TLSConfigError, EngineError)  # a start-up error, reported in one line


def test_a_bad_file_at_start_stops_the_start(pki, tmp_path):
    with pytest.raises(TLSConfigError, match="ENGINE_TLS_CLIENT_CA_FILE"):
        CertificateFiles(pki.pem("server"), pki.key("server"), tmp_path / "no-ca.pem")
    empty = tmp_path / "empty.key"
    empty.write_bytes(b"")
    with pytest.raises(TLSConfigError, match="ENGINE_TLS_KEY_FILE"):
        CertificateFiles(pki.pem("server"), empty, None)


def test_a_changed_client_ca_is_reread(pki, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pki.read("ca"))
    files = CertificateFiles(pki.pem("server"), pki.key("server"), ca)
    assert isinstance(files.initial, grpc.ServerCertificateConfiguration)
    assert files.fetch() is None
    ca.write_bytes(pki.read("other-ca"))
    os.utime(ca, ns=(1, 1))
    assert isinstance(files.fetch(), grpc.ServerCertificateConfiguration)


def test_a_removed_file_keeps_the_old_configuration_until_it_is_back(pki, tmp_path):
    cert = tmp_path / "server.pem"
    cert.write_bytes(pki.read("server"))
    files = CertificateFiles(cert, pki.key("server"), None)
    cert.unlink()
    assert files.fetch() is None  # cannot be read: the current certificate stays
    cert.write_bytes(pki.read("server"))
    assert isinstance(files.fetch(), grpc.ServerCertificateConfiguration)


# --- Credentials and the port ---------------------------------------------------------------


def test_no_certificate_means_plain_text():
    assert server_credentials(settings()) is None


def test_a_certificate_gives_server_credentials(pki):
    assert isinstance(server_credentials(tls_settings(pki)), grpc.ServerCredentials)
    with pytest.raises(TLSConfigError):
        server_credentials(tls_settings(pki).model_copy(update={"tls_key_file": Path("/none")}))


async def reaches(port: int, credentials: grpc.ChannelCredentials | None) -> bool:
    """Whether a channel with ``credentials`` (None: plain text) gets to READY: for TLS, the
    handshake succeeded."""
    target = f"127.0.0.1:{port}"
    if credentials is None:
        channel = grpc.aio.insecure_channel(target)
    else:
        channel = grpc.aio.secure_channel(target, credentials)
    try:
        await asyncio.wait_for(channel.channel_ready(), 3)
        return True
    except TimeoutError:
        return False
    finally:
        await channel.close()


@pytest.fixture
async def bound():
    servers: list[grpc.aio.Server] = []

    async def bind(values: EngineSettings) -> int:
        server = grpc.aio.server()
        port = add_port(server, "127.0.0.1:0", values)
        await server.start()
        servers.append(server)
        return port

    yield bind
    for server in servers:
        await server.stop(None)


def client(pki: PKI, with_certificate: bool = False) -> grpc.ChannelCredentials:
    if with_certificate:
        return grpc.ssl_channel_credentials(
            pki.read("ca"), pki.read_key("client"), pki.read("client")
        )
    return grpc.ssl_channel_credentials(pki.read("ca"))


async def test_without_tls_the_port_speaks_plain_text(bound, pki):
    port = await bound(settings())
    assert await reaches(port, None)
    assert not await reaches(port, client(pki))


async def test_with_tls_the_port_speaks_only_tls(bound, pki):
    port = await bound(tls_settings(pki))
    assert await reaches(port, client(pki))
    assert not await reaches(port, None)


async def test_with_a_client_ca_the_port_requires_a_client_certificate(bound, pki):
    port = await bound(tls_settings(pki, mutual=True))
    assert await reaches(port, client(pki, with_certificate=True))
    assert not await reaches(port, client(pki))
