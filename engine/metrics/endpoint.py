"""The Prometheus /metrics endpoint: prometheus-client's WSGI app on a small threaded wsgiref
server, bound to its own address (loopback by default), optionally behind the bearer token.

Not prometheus_client.start_http_server: its handler waits forever for a request on an idle
connection, one thread each, so anyone who can connect can pin threads without limit. Here each
connection's socket has a timeout (ENGINE_METRICS_IDLE_TIMEOUT_SECONDS).
"""

from __future__ import annotations

import logging
import socket
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import prometheus_client

from datasentinel.engine.errors import BindError
from datasentinel.engine.metrics.tls_expiry import CertificateExpiryCollector
from datasentinel.engine.security.auth import TokenFile
from datasentinel.engine.settings import EngineSettings

log = logging.getLogger(__name__)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a scrape in progress does not hold the engine's exit
    allow_reuse_address = True


class _Handler(WSGIRequestHandler):
    timeout = 10.0  # socket timeout: an idle or stalled connection is closed, its thread freed

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


def _server_class(host: str) -> type[_Server]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return type("MetricsServer", (_Server,), {"address_family": family})


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
            server_class=_server_class(host),
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
