"""TLS and the bearer token on the producer's channel to the engine.

With TLS the token travels as gRPC call credentials (grpcio's own ``access_token_call_credentials``,
``authorization: Bearer <token>``). grpc refuses call credentials on a plain-text channel, so
there a client interceptor adds the same metadata: allowed, since the engine may sit on loopback
or a private network, and the engine warns when it is exposed that way.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from pathlib import Path

import grpc

from datasentinel.producer.errors import EXIT_USAGE, ProducerError
from datasentinel.secret_files import SecretFileError, parse_tokens, read_secret_file


class SecurityFileError(ProducerError):
    """A TLS or token file named in the settings cannot be used."""

    exit_code = EXIT_USAGE


def _read(path: Path | None, setting: str) -> bytes | None:
    if path is None:
        return None
    try:
        return read_secret_file(path, setting)
    except SecretFileError as exc:
        raise SecurityFileError(str(exc)) from None


def read_token(path: Path) -> str:
    """The first token of a token file (the engine's format: one per line, '#' comments and
    blank lines ignored)."""
    tokens = parse_tokens(_read(path, "PRODUCER_AUTH_TOKEN_FILE").decode())
    if not tokens:
        raise SecurityFileError(f"PRODUCER_AUTH_TOKEN_FILE {path} holds no token")
    return tokens[0]


@dataclass(frozen=True)
class ClientSecurity:
    """What a channel to the engine needs: TLS material and a token (all optional)."""

    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = None
    token_file: Path | None = None

    @classmethod
    def from_settings(cls, settings) -> ClientSecurity:
        """From ProducerSettings (``tls_*`` and ``auth_token_file``)."""
        return cls(
            tls=settings.tls,
            ca_file=settings.tls_ca_file,
            cert_file=settings.tls_cert_file,
            key_file=settings.tls_key_file,
            server_name=settings.tls_server_name,
            token_file=settings.auth_token_file,
        )

    @property
    def uses_tls(self) -> bool:
        return self.tls or any((self.ca_file, self.cert_file, self.key_file, self.server_name))


class _Call(
    collections.namedtuple(
        "_Call", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
    ),
    grpc.ClientCallDetails,
):
    """ClientCallDetails with the authorization metadata added."""


class BearerTokenInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds ``authorization: Bearer <token>`` to every call (plain-text channels)."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _details(self, details: grpc.ClientCallDetails) -> _Call:
        metadata = [*(details.metadata or ()), self._header]
        return _Call(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._details(details), requests)


def secure_channel(
    target: str, options: list[tuple], security: ClientSecurity | None
) -> grpc.Channel:
    """A channel to ``target`` with TLS and the token as ``security`` says (plain without it)."""
    security = security or ClientSecurity()
    token = read_token(security.token_file) if security.token_file else None
    if not security.uses_tls:
        channel = grpc.insecure_channel(target, options=options)
        return grpc.intercept_channel(channel, BearerTokenInterceptor(token)) if token else channel
    if (security.cert_file is None) != (security.key_file is None):
        raise SecurityFileError(
            "mutual TLS needs both PRODUCER_TLS_CERT_FILE and PRODUCER_TLS_KEY_FILE"
        )
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(security.ca_file, "PRODUCER_TLS_CA_FILE"),
        private_key=_read(security.key_file, "PRODUCER_TLS_KEY_FILE"),
        certificate_chain=_read(security.cert_file, "PRODUCER_TLS_CERT_FILE"),
    )
    if token:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(token)
        )
    if security.server_name:
        options = [*options, ("grpc.ssl_target_name_override", security.server_name)]
    return grpc.secure_channel(target, credentials, options=options)
