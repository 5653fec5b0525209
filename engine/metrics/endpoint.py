"""The Prometheus /metrics endpoint: prometheus-client's WSGI app on a small threaded wsgiref
server, bound to its own address (loopback by default), optionally behind the bearer token.

Not prometheus_client.start_http_server: its handler waits forever for a request on an idle
connection, one thread each, so anyone who can connect can pin threads without limit. Here each
connection has a deadline for the whole request (ENGINE_METRICS_IDLE_TIMEOUT_SECONDS): a socket
timeout per read is not enough, since a client that sends a header line every few seconds never
lets one read time out. Connections beyond ENGINE_METRICS_MAX_CONNECTIONS are closed at once, so
slow clients can hold at most that many threads, each for at most the deadline.
"""

from __future__ import annotations

import io
import logging
import socket
import sys
import threading
import time
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import prometheus_client

from datasentinel.engine.errors import BindError
from datasentinel.engine.metrics.tls_expiry import CertificateExpiryCollector
from datasentinel.engine.security.auth import TokenFile
from datasentinel.engine.settings import EngineSettings

log = logging.getLogger(__name__)

BACKLOG = 128  # socketserver's 5 drops connections when a few scrapers arrive at once


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a scrape in progress does not hold the engine's exit
    allow_reuse_address = True
    request_queue_size = BACKLOG
    max_connections = 32  # replaced per server (ENGINE_METRICS_MAX_CONNECTIONS)

    def server_activate(self) -> None:
        self._slots = threading.BoundedSemaphore(self.max_connections)
        super().server_activate()

    def verify_request(self, request, client_address) -> bool:
        """False (the connection is closed at once, unread) when every slot is taken."""
        if self._slots.acquire(blocking=False):
            return True
        log.debug(
            "metrics connection from %s refused: %d open", client_address[0], self.max_connections
        )
        return False

    def process_request(self, request, client_address) -> None:
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started: its slot is free again
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address) -> None:
        """A client that was too slow, or went away, is no engine error: no traceback."""
        if isinstance(sys.exception(), OSError):
            log.debug("metrics connection from %s closed: %s", client_address[0], sys.exception())
            return
        super().handle_error(request, client_address)


class _DeadlineReader(io.RawIOBase):
    """A connection's socket, read with what is left of the connection's deadline as each
    read's timeout: the whole request must arrive in time, however slowly it is trickled."""

    def __init__(self, connection: socket.socket, seconds: float) -> None:
        self._connection = connection
        self._deadline = time.monotonic() + seconds

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request did not arrive within the deadline")
        # Also bounds sending the answer (sendall's timeout is for the whole answer), from here.
        self._connection.settimeout(left)
        return self._connection.recv_into(buffer)


class _Handler(WSGIRequestHandler):
    timeout = 10.0  # the whole request's deadline, seconds: then the connection is closed

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the plain socket file; reads go through the deadline instead
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self.timeout))

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        """Scrapes are not logged (one line every few seconds otherwise)."""


def _require_token(app, tokens: TokenFile):
    """WSGI middleware: 401 unless the request carries ``Authorization: Bearer <token>``."""

    def guarded(environ, start_response):
        if tokens.accepts_header(environ.get("HTTP_AUTHORIZATION")):
            return app(environ, start_response)
        start_response(
            "401 Unauthorized",
            [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="metrics"')],
        )
        return [b"send 'Authorization: Bearer <token>' (a token of ENGINE_AUTH_TOKEN_FILE)\n"]

    return guarded


def _server_class(host: str, max_connections: int) -> type[_Server]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return type(
        "MetricsServer",
        (_Server,),
        {"address_family": family, "max_connections": max_connections},
    )


def serve_metrics(
    settings: EngineSettings,
    registry: prometheus_client.CollectorRegistry = prometheus_client.REGISTRY,
) -> WSGIServer | None:
    """Serves /metrics over HTTP on a thread of its own (unless ENGINE_METRICS_PORT is -1);
    returns the server (``shutdown()`` stops it)."""
    if settings.metrics_port < 0:
        return None
    if settings.tls_cert_file is not None:
        registry.register(CertificateExpiryCollector(settings.tls_cert_file))
    app = prometheus_client.make_wsgi_app(registry)
    if settings.metrics_require_token:
        app = _require_token(app, TokenFile(settings.auth_token_file))
    host = settings.metrics_bind_host
    handler = type(
        "MetricsHandler", (_Handler,), {"timeout": settings.metrics_idle_timeout_seconds}
    )
    try:
        server = make_server(
            host,
            settings.metrics_port,
            app,
            server_class=_server_class(host, settings.metrics_max_connections),
            handler_class=handler,
        )
    except OSError as exc:
        raise BindError(
            f"cannot serve metrics on {host}:{settings.metrics_port} ({exc.strerror}); choose "
            "another port with --metrics-port / ENGINE_METRICS_PORT (-1 turns it off)"
        ) from None
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    log.info("metrics on http://%s:%d/metrics", host, server.server_port)
    return server
