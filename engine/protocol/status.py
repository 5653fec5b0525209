"""The one place where engine errors become gRPC status codes."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from datasentinel.engine import errors
from datasentinel.engine.metrics import refusals as reasons
from datasentinel.engine.metrics.collectors import metrics
from datasentinel.engine.metrics.refusals import refusals

log = logging.getLogger(__name__)

_CODES: dict[type[errors.EngineError], grpc.StatusCode] = {
    errors.InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    errors.ModelNotFound: grpc.StatusCode.NOT_FOUND,
    errors.TooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.ModelLoadError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.ProviderError: grpc.StatusCode.FAILED_PRECONDITION,
}


# Errors that turn a client away for the engine's sake, not for a fault in the request: counted
# in datasentinel_refused_calls too, so shedding shows beside the other refusals.
_REASONS: dict[type[errors.EngineError], str] = {
    errors.TooLarge: reasons.TOO_LARGE,
    errors.Overloaded: reasons.SHED,
}


# The same outcomes over HTTP (engine/rest/), as Triton's and KServe's REST endpoints answer
# them; a message too large is 413, not 429 (retrying it as it is cannot help).
_HTTP: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
}


def http_status(code: grpc.StatusCode, exc: Exception | None = None) -> int:
    """The HTTP status for a call that ended with ``code`` (caused by ``exc``, when known)."""
    if isinstance(exc, errors.TooLarge):
        return 413
    return _HTTP.get(code, 500)


def status_for(exc: Exception) -> tuple[grpc.StatusCode, str]:
    """The status code and message a client gets for ``exc``. Unknown errors are bugs: logged with
    their traceback, reported as INTERNAL without internals."""
    for kind in type(exc).__mro__:
        if kind in _CODES:
            return _CODES[kind], str(exc)
    log.error("unexpected error while serving a request", exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__}); see the engine log"


def failed(rpc: str, exc: Exception, seconds: float) -> tuple[grpc.StatusCode, str]:
    """``status_for(exc)``, with the failed request recorded: in datasentinel_requests by its
    code and, for a refusal (shed, too large), in datasentinel_refused_calls by its reason."""
    code, message = status_for(exc)
    metrics().observe_request(rpc, code.name, seconds)
    reason = next((_REASONS[k] for k in type(exc).__mro__ if k in _REASONS), None)
    if reason is not None:
        refusals().count(rpc, code.name, reason)
    return code, message


T = TypeVar("T")


async def outcome(rpc: str, work: Awaitable[T]) -> tuple[T | None, grpc.StatusCode, str]:
    """Awaits ``work``; returns its result (or None), the status code and the error message, and
    records the request in the metrics: every unary call and every stream message passes here."""
    start = time.perf_counter()
    try:
        result = await work
    except Exception as exc:
        return None, *failed(rpc, exc, time.perf_counter() - start)
    except asyncio.CancelledError:
        cancelled(rpc, start)
        raise
    metrics().observe_request(rpc, grpc.StatusCode.OK.name, time.perf_counter() - start)
    return result, grpc.StatusCode.OK, ""


def cancelled(rpc: str, start: float) -> None:
    """Records a call the client cancelled or let its deadline pass (gRPC cancels the handler):
    under overload these are the calls that waited too long, so they must show."""
    metrics().observe_request(rpc, grpc.StatusCode.CANCELLED.name, time.perf_counter() - start)
    refusals().count(rpc, grpc.StatusCode.CANCELLED.name, reasons.CANCELLED)
    log.debug(
        "%s cancelled by the client (cancel or deadline) after %.3f s",
        rpc,
        time.perf_counter() - start,
    )


async def reject(rpc: str, exc: Exception, context: grpc.aio.ServicerContext) -> None:
    """Ends a unary call with ``exc``'s status, recorded like any other failed request."""
    code, message = failed(rpc, exc, 0.0)
    await context.abort(code, message)


def abort_on_error(handler: Callable) -> Callable:
    """Wraps a unary aio handler: an error ends the call with its mapped status."""
    rpc = handler.__name__

    @functools.wraps(handler)
    async def wrapper(self, request, context: grpc.aio.ServicerContext):
        result, code, message = await outcome(rpc, handler(self, request, context))
        if code != grpc.StatusCode.OK:
            await context.abort(code, message)
        return result

    return wrapper
