"""TLS (and mutual TLS) for the gRPC port, with grpcio's own credentials.

The certificate files are reread when they change, so a rotation (a Kubernetes Secret update,
cert-manager, a cron job with openssl) needs no restart: grpc calls the fetcher at every new TLS
handshake, the fetcher compares the files' stat signatures and only rereads on a change. Existing
connections keep the certificate they were opened with. A certificate out of its validity dates
is refused, at start and on rotation (``engine.security.certificates``).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import grpc

from datasentinel.engine.errors import EngineError
from datasentinel.engine.file_identity import file_identity
from datasentinel.engine.security.certificates import (
    CertificateDatesError,
    CertificateError,
    Validity,
    check_dates,
    read_validity,
)
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
    configuration; ``fetch`` is grpc's ``certificate_configuration_fetcher``. ``warning_days``:
    log a warning when the certificate ends within that many days (None: never, for a check
    that serves nothing); ``validity`` is the served certificate's."""

    def __init__(
        self, cert: Path, key: Path, client_ca: Path | None, warning_days: float | None = None
    ) -> None:
        self._paths = [cert, key] + ([client_ca] if client_ca else [])
        self._warning_days = warning_days
        self._lock = threading.Lock()
        self._seen = _signature(self._paths)
        # Raises: a bad file, or a certificate out of its dates, at start is a start-up error.
        self.initial, self.validity = self._load()
        self._warned = False
        self._warn_if_ending()

    def _load(self) -> tuple[grpc.ServerCertificateConfiguration, Validity]:
        cert = read_file(self._paths[0], "ENGINE_TLS_CERT_FILE")
        validity = read_validity(cert, self._paths[0])
        check_dates(validity)
        key = read_file(self._paths[1], "ENGINE_TLS_KEY_FILE")
        ca = (
            read_file(self._paths[2], "ENGINE_TLS_CLIENT_CA_FILE") if len(self._paths) > 2 else None
        )
        config = grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)
        return config, validity

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """None keeps the current configuration (grpc's contract): the files did not change,
        they changed but cannot be read yet (half-written: tried again next handshake), or the
        new certificate is out of its dates (refused until the files change again)."""
        with self._lock:
            self._warn_if_ending()  # an engine that runs for weeks crosses the line too
            signature = _signature(self._paths)
            if signature == self._seen:
                return None
            try:
                config, validity = self._load()
            except CertificateDatesError as exc:
                self._seen = signature  # once, not at every handshake
                log.error(
                    "refusing the new TLS certificate, new connections keep getting %s: %s",
                    self.validity.describe(),
                    exc,
                )
                return None
            except (TLSConfigError, CertificateError) as exc:
                log.warning("TLS files changed but cannot be used yet (%s); keeping the old", exc)
                return None
            self._seen = signature
            self.validity, self._warned = validity, False
            self._warn_if_ending()
        log.info("TLS certificate files changed: new connections use the new certificate")
        return config

    def _warn_if_ending(self) -> None:
        """One warning per certificate, once it ends within ``warning_days``."""
        if self._warning_days is None or self._warned:
            return
        days = self.validity.days_left()
        if days < self._warning_days:
            self._warned = True
            log.warning(
                "the TLS certificate %s expires in %.1f days: renew it before then "
                "(ENGINE_TLS_EXPIRY_WARNING_DAYS=%g)",
                self.validity.describe(),
                days,
                self._warning_days,
            )


def check_files(settings: EngineSettings) -> None:
    """The start-up check (``engine.security.policy``): every TLS file readable and the
    certificate within its dates, else the error that stops the start. Warns about nothing: the
    processes that serve do."""
    if settings.tls_cert_file is not None:
        CertificateFiles(settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file)


def server_credentials(settings: EngineSettings) -> grpc.ServerCredentials | None:
    """Credentials for the gRPC port, or None when TLS is off (no certificate configured)."""
    if settings.tls_cert_file is None:
        return None
    files = CertificateFiles(
        settings.tls_cert_file,
        settings.tls_key_file,
        settings.tls_client_ca_file,
        settings.tls_expiry_warning_days,
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
