"""TLS for the REST port from the same files as the gRPC port (ENGINE_TLS_*), reread when they
change, as grpc's certificate fetcher does: checked at each new handshake (a stat of each file),
so a rotation needs no restart and connections already open keep their certificate."""

from __future__ import annotations

import logging
import ssl
import threading
from pathlib import Path

from datasentinel.engine.file_identity import file_identity
from datasentinel.engine.security.tls import TLSConfigError
from datasentinel.engine.settings import EngineSettings

log = logging.getLogger(__name__)


class ReloadingContext:
    """``context`` is the listening socket's; each handshake switches to the newest files'."""

    def __init__(self, cert: Path, key: Path, client_ca: Path | None) -> None:
        self._cert, self._key, self._ca = cert, key, client_ca
        self._paths = [cert, key] + ([client_ca] if client_ca else [])
        self._lock = threading.Lock()
        self._seen = self._signature()
        self.context = self._build()  # raises: a bad file at start is a start-up error
        self._current = self.context
        self.context.sni_callback = self._on_hello

    def _signature(self) -> tuple:
        return tuple(file_identity(path) for path in self._paths)

    def _build(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self._cert, self._key)
            if self._ca is not None:
                context.load_verify_locations(self._ca)
                context.verify_mode = ssl.CERT_REQUIRED
        except (OSError, ssl.SSLError) as exc:
            raise TLSConfigError(f"cannot use the TLS files for the REST port: {exc}") from None
        return context

    def _on_hello(self, connection: ssl.SSLObject, server_name, context) -> None:
        with self._lock:
            signature = self._signature()
            if signature != self._seen:
                try:
                    self._current = self._build()
                    self._current.sni_callback = self._on_hello
                    self._seen = signature
                    log.info("TLS files changed: new REST connections use the new certificate")
                except TLSConfigError as exc:
                    log.warning("%s; keeping the old certificate", exc)
            if self._current is not context:
                connection.context = self._current


def ssl_context(settings: EngineSettings) -> ssl.SSLContext | None:
    """None when TLS is off (no certificate configured)."""
    if settings.tls_cert_file is None:
        return None
    files = ReloadingContext(
        settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file
    )
    return files.context
