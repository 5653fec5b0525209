"""Bearer-token authentication, checked in one place: a server interceptor in front of every
RPC except the probes (probes carry no secrets): the standard health service, and the Open
Inference Protocol's liveness and readiness calls, which answer one boolean each.

Tokens come from a file, one per line (blank lines and ``#`` comments ignored), reread when the
file changes so tokens can be added or revoked without a restart. A presented token is compared
with every accepted one in constant time, on SHA-256 digests so neither which token matched nor
the tokens' lengths show in the timing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from pathlib import Path

import grpc

from datasentinel.engine.errors import EngineError
from datasentinel.engine.file_identity import file_identity
from datasentinel.engine.metrics import refusals as reasons
from datasentinel.engine.metrics.refusals import refusals
from datasentinel.engine.settings import EngineSettings
from datasentinel.secret_files import parse_tokens

log = logging.getLogger(__name__)

HEALTH_PREFIX = "/grpc.health.v1.Health/"
# The protocol's own probes, by exact method: they say no more than the health service does
# (live, ready, the served model ready). Metadata, config and statistics stay behind the token.
OPEN_METHODS = frozenset(
    f"/inference.GRPCInferenceService/{rpc}" for rpc in ("ServerLive", "ServerReady", "ModelReady")
)
# What a refused caller is told: how to authenticate, never anything about the tokens.
UNAUTHENTICATED_MESSAGE = (
    "this engine requires a token: send 'authorization: Bearer <token>' metadata "
    "(the producer reads PRODUCER_AUTH_TOKEN_FILE; tritonclient: headers={'authorization': "
    "'Bearer <token>'})"
)
# How often a call may stat the token file to notice a change (a stat per call would cost more
# than the check itself).
RECHECK_SECONDS = 1.0


class TokenFileError(EngineError):
    """The token file cannot be read or holds no token."""


def _digest(token: str | bytes) -> bytes:
    data = token.encode() if isinstance(token, str) else token
    return hashlib.sha256(data).digest()


class TokenFile:
    """The accepted tokens, from ``path``; ``accepts`` is safe to call from any thread."""

    def __init__(self, path: Path, clock=time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._signature, digests = self._read()  # raises: a bad file at start is fatal
        if not digests:
            raise TokenFileError(f"ENGINE_AUTH_TOKEN_FILE {path} holds no token")
        self._digests = digests
        self._next_check = clock() + RECHECK_SECONDS

    def _read(self) -> tuple[tuple, tuple[bytes, ...]]:
        signature = file_identity(self.path)  # before reading: a later change is seen next time
        try:
            text = self.path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenFileError(f"cannot read ENGINE_AUTH_TOKEN_FILE {self.path}: {exc}") from None
        return signature, tuple(_digest(t) for t in parse_tokens(text))

    def refresh(self, force: bool = False) -> None:
        """Rereads the file if it changed; an unreadable or empty file keeps the old tokens
        (a half-written file must not lock everyone out)."""
        now = self._clock()
        if not force and now < self._next_check:
            return
        with self._lock:
            self._next_check = now + RECHECK_SECONDS
            signature = file_identity(self.path)
            if signature is None:
                log.warning("token file %s cannot be read; keeping the current tokens", self.path)
                return
            if signature == self._signature:
                return
            try:
                signature, digests = self._read()
            except TokenFileError as exc:
                log.warning("%s; keeping the current tokens", exc)
                return
            if not digests:
                log.warning("token file %s holds no token; keeping the current ones", self.path)
                return
            self._signature, self._digests = signature, digests
        log.info("token file %s reread: %d tokens accepted", self.path, len(digests))

    def accepts(self, token: str | bytes | None) -> bool:
        if token is None:
            return False
        self.refresh()
        presented = _digest(token)
        matched = False
        for digest in self._digests:  # no early exit: every token costs the same
            matched |= hmac.compare_digest(presented, digest)
        return matched

    def accepts_header(self, value: str | bytes | None) -> bool:
        """``value`` is an ``authorization`` header: ``Bearer <token>``."""
        return self.accepts(bearer_token(value))


def bearer_token(value: str | bytes | None) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _authorization(metadata) -> str | None:
    for key, value in metadata or ():
        if key == "authorization":
            return value
    return None


def _denial(method: str) -> grpc.RpcMethodHandler:
    """A handler that refuses the call, counted, without reading its message. Request-streaming
    whatever the method: gRPC reads a unary call's whole message before calling its handler (16
    callers without a token sending 64 MB each took the engine from 113 to 1,423 MB), a streaming
    handler reads nothing until it asks. The client cannot tell the difference."""
    rpc = method.rsplit("/", 1)[-1]

    async def deny(requests, context: grpc.aio.ServicerContext) -> None:
        refusals().refused(rpc, "UNAUTHENTICATED", reasons.UNAUTHENTICATED, context.peer())
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)

    return grpc.stream_unary_rpc_method_handler(deny)


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    """Lets a call through when its ``authorization`` metadata carries an accepted token, or when
    it is a probe (health service, OIP live/ready); refuses it UNAUTHENTICATED otherwise,
    unknown methods included (an UNIMPLEMENTED answer would let a stranger list the methods)."""

    def __init__(self, tokens: TokenFile) -> None:
        self._tokens = tokens

    async def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        if method.startswith(HEALTH_PREFIX) or method in OPEN_METHODS:
            return await continuation(handler_call_details)
        header = _authorization(handler_call_details.invocation_metadata)
        if self._tokens.accepts_header(header):
            return await continuation(handler_call_details)  # None: UNIMPLEMENTED as usual
        return _denial(method)


def token_file(settings: EngineSettings) -> TokenFile | None:
    return TokenFile(settings.auth_token_file) if settings.auth_token_file else None


def auth_interceptors(settings: EngineSettings) -> list[grpc.aio.ServerInterceptor]:
    """The interceptors for ``grpc.aio.server``: none when no token file is configured."""
    tokens = token_file(settings)
    return [BearerTokenInterceptor(tokens)] if tokens else []
