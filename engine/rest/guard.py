"""Admission of REST calls, as for gRPC: the token (probes open), the same call budget per
client address as the gRPC calls of this process, and the message size limit. Every refusal is
counted in datasentinel_refused_calls and datasentinel_requests, like gRPC's. A call without a
valid token is refused before its body is read (aiohttp reads it only when the handler asks).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from datasentinel.engine.errors import TooLarge
from datasentinel.engine.metrics import refusals as reasons
from datasentinel.engine.metrics.refusals import refusals
from datasentinel.engine.protocol.call_admission import CallBudget
from datasentinel.engine.protocol.status import failed
from datasentinel.engine.security.auth import UNAUTHENTICATED_MESSAGE, TokenFile

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Whether the route needs no token (set by engine/rest/app.py on each probe route).
OPEN = "datasentinel_open"


def error(status: int, message: str, headers: dict | None = None) -> web.Response:
    """The protocol's error body: ``{"error": message}``."""
    body = json.dumps({"error": message})
    return web.Response(status=status, text=body, content_type="application/json", headers=headers)


def rpc_name(request: web.Request) -> str:
    """The rpc label of a REST call in the metrics: Rest + the handler's name."""
    name = getattr(request.match_info.handler, "__name__", "Unknown")
    return "Rest" + "".join(part.title() for part in name.split("_"))


def peer_address(request: web.Request) -> str:
    """The client's address in gRPC's form (``ipv4:127.0.0.1``), so one client's REST and gRPC
    calls draw on one share."""
    host = request.remote or ""
    try:
        version = ipaddress.ip_address(host).version
    except ValueError:
        return host
    return f"ipv4:{host}" if version == 4 else f"ipv6:%5B{host}%5D"


def guard(tokens: TokenFile | None, budget: CallBudget, max_bytes: int):
    """The aiohttp middleware."""

    @web.middleware
    async def admit(request: web.Request, handler: Handler) -> web.StreamResponse:
        if getattr(request.match_info.handler, OPEN, False):
            return await handler(request)
        rpc, peer = rpc_name(request), peer_address(request)
        if tokens is not None and not tokens.accepts_header(request.headers.get("Authorization")):
            refusals().refused(rpc, "UNAUTHENTICATED", reasons.UNAUTHENTICATED, peer)
            return error(401, UNAUTHENTICATED_MESSAGE, {"WWW-Authenticate": "Bearer"})
        if request.content_length is not None and request.content_length > max_bytes:
            return _too_large(rpc, request.content_length, max_bytes)
        refusal = budget.take(peer)
        if refusal is not None:
            reason, message = refusal
            refusals().refused(rpc, "RESOURCE_EXHAUSTED", reason, peer)
            return error(429, message)
        try:
            return await handler(request)
        finally:
            budget.give(peer)

    return admit


def _too_large(rpc: str, size: int, max_bytes: int) -> web.Response:
    exc = TooLarge(
        f"message of {size} bytes exceeds the engine's limit of {max_bytes} bytes "
        "(ENGINE_MAX_MESSAGE_MB); send fewer vectors per message"
    )
    _, message = failed(rpc, exc, 0.0)
    return error(413, message)
