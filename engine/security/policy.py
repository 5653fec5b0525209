"""The start-up security check: consistent settings, readable files, and a clear word (or a
refusal, with ENGINE_REQUIRE_AUTH) when the engine is reachable from the network unprotected."""

from __future__ import annotations

import ipaddress
import logging
import socket

from datasentinel.engine.errors import EngineError
from datasentinel.engine.security.auth import token_file
from datasentinel.engine.security.tls import check_files
from datasentinel.engine.settings import EngineSettings

log = logging.getLogger(__name__)


class SecurityConfigError(EngineError):
    """The security settings contradict each other, or the engine would serve the network
    unprotected while ENGINE_REQUIRE_AUTH is set."""


def is_loopback(host: str) -> bool:
    """True when ``host`` only reaches this machine (127.0.0.0/8, ::1, a name resolving there);
    0.0.0.0 and :: listen on every interface."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def _check_consistent(settings: EngineSettings) -> None:
    if (settings.tls_cert_file is None) != (settings.tls_key_file is None):
        raise SecurityConfigError(
            "TLS needs both ENGINE_TLS_CERT_FILE and ENGINE_TLS_KEY_FILE (only one is set)"
        )
    if settings.tls_client_ca_file is not None and settings.tls_cert_file is None:
        raise SecurityConfigError(
            "ENGINE_TLS_CLIENT_CA_FILE (mutual TLS) needs ENGINE_TLS_CERT_FILE and "
            "ENGINE_TLS_KEY_FILE too"
        )
    if settings.metrics_require_token and settings.auth_token_file is None:
        raise SecurityConfigError(
            "ENGINE_METRICS_REQUIRE_TOKEN needs ENGINE_AUTH_TOKEN_FILE (the tokens to accept)"
        )


def exposure_problems(settings: EngineSettings) -> list[str]:
    """What is open to the network without protection, one sentence each (empty: nothing)."""
    problems = []
    if not is_loopback(settings.bind_host):
        where = f"gRPC on {settings.bind_host}:{settings.port}"
        if settings.tls_cert_file is None:
            problems.append(
                f"{where} is plain text: vectors, scores and tokens can be read on the network "
                "(set ENGINE_TLS_CERT_FILE and ENGINE_TLS_KEY_FILE)"
            )
        if settings.auth_token_file is None and settings.tls_client_ca_file is None:
            problems.append(
                f"{where} serves anyone who can reach it (set ENGINE_AUTH_TOKEN_FILE, or "
                "ENGINE_TLS_CLIENT_CA_FILE for mutual TLS)"
            )
    metrics_open = settings.metrics_port >= 0 and not is_loopback(settings.metrics_bind_host)
    if metrics_open and not settings.metrics_require_token:
        problems.append(
            f"metrics on {settings.metrics_bind_host}:{settings.metrics_port} need no token "
            "(set ENGINE_METRICS_REQUIRE_TOKEN=true, or ENGINE_METRICS_BIND_HOST=127.0.0.1)"
        )
    return problems


def check_security(settings: EngineSettings) -> None:
    """Run once at start, before binding: raises SecurityConfigError (or the TLS/token file's
    own error) for a problem that must stop the engine, logs a warning for each exposure."""
    _check_consistent(settings)
    check_files(settings)  # the files are read now so a bad one is a one-line error
    token_file(settings)
    problems = exposure_problems(settings)
    if problems and settings.require_auth:
        raise SecurityConfigError(
            "refusing to start (ENGINE_REQUIRE_AUTH is set): " + "; ".join(problems)
        )
    for problem in problems:
        log.warning("INSECURE: %s", problem)
    log.info(
        "security: %s, %s, reflection %s, metrics %s",
        "mutual TLS"
        if settings.tls_client_ca_file
        else "TLS"
        if settings.tls_cert_file
        else "plain text",
        "bearer tokens" if settings.auth_token_file else "no tokens",
        "on" if settings.reflection else "off",
        "with token" if settings.metrics_require_token else "without token",
    )
