"""TLS (and mutual TLS) for the gRPC port, with grpcio's own credentials.

The certificate files are reread when they change, so a rotation (a Kubernetes Secret update,
cert-manager, a cron job with openssl) needs no restart: grpc calls the fetcher at every new TLS
handshake, the fetcher compares the files' stat signatures and only rereads on a change. Existing
connections keep the certificate they were opened with.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import grpc

from datasentinel.engine.errors import EngineError
from datasentinel.engine.file_identity import file_identity
from datasentinel.engine.settings import EngineSettings
from datasentinel.secret_files import SecretFileError, read_secret_file

log = logging.getLogger(__name__)


class TLSConfigError(EngineError):
    """A TLS file named in the settings cannot be read."""


def read_file(path: Path, setting: str) -> bytes:
    try:
        return read_secret_file(path, setting)
    except SecretFileError as exc:
        raise TLSConfigError(str(exc)) from None


def _signature(paths: list[Path]) -> tuple:
    return tuple(file_identity(path) for path in paths)


class CertificateFiles:
    """The server's key, certificate and optional client CA, as grpc's certificate
    configuration; ``fetch`` is grpc's ``certificate_configuration_fetcher``."""

    def __init__(self, cert: Path, key: Path, client_ca: Path | None) -> None:
        self._paths = [cert, key] + ([client_ca] if client_ca else [])
        self._lock = threading.Lock()
        self._seen = _signature(self._paths)
        self.initial = self._load()  # raises: a bad file at start is a start-up error

    def _load(self) -> grpc.ServerCertificateConfiguration:
        cert = read_file(self._paths[0], "ENGINE_TLS_CERT_FILE")
        key = read_file(self._paths[1], "ENGINE_TLS_KEY_FILE")
        ca = (
            read_file(self._paths[2], "ENGINE_TLS_CLIENT_CA_FILE") if len(self._paths) > 2 else None
        )
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """None keeps the current configuration (grpc's contract): the files did not change,
        or they changed but cannot be read yet (half-written: tried again next handshake)."""
        with self._lock:
            signature = _signature(self._paths)
            if signature == self._seen:
                return None
            try:
                config = self._load()
            except TLSConfigError as exc:
                log.warning("TLS files changed but cannot be used yet (%s); keeping the old", exc)
                return None
            self._seen = signature
        log.info("TLS certificate files changed: new connections use the new certificate")
        return config


def server_credentials(settings: EngineSettings) -> grpc.ServerCredentials | None:
    """Credentials for the gRPC port, or None when TLS is off (no certificate configured)."""
    if settings.tls_cert_file is None:
        return None
    files = CertificateFiles(
        settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file
    )
    return grpc.dynamic_ssl_server_credentials(
        files.initial,
        files.fetch,
        require_client_authentication=settings.tls_client_ca_file is not None,
    )


def add_port(server: grpc.aio.Server, address: str, settings: EngineSettings) -> int:
    """Binds ``address`` with TLS when configured, in plain text otherwise."""
    credentials = server_credentials(settings)
    if credentials is None:
        return server.add_insecure_port(address)
    return server.add_secure_port(address, credentials)
