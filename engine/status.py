"""The one place where engine errors become gRPC status codes."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from engine import errors

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


def status_for(exc: Exception) -> tuple[grpc.StatusCode, str]:
    """The status code and message a client gets for ``exc``. Unknown errors are bugs: logged with
    their traceback, reported as INTERNAL without internals."""
    for kind in type(exc).__mro__:
        if kind in _CODES:
            return _CODES[kind], str(exc)
    log.error("unexpected error while serving a request", exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__}); see the engine log"


Request = TypeVar("Request")
Response = TypeVar("Response")
Handler = Callable[[object, Request, grpc.aio.ServicerContext], Awaitable[Response]]


def abort_on_error(handler: Handler) -> Handler:
    """Wraps a unary aio handler: any error ends the call with its mapped status."""

    @functools.wraps(handler)
    async def wrapper(self: object, request: Request, context: grpc.aio.ServicerContext):
        try:
            return await handler(self, request, context)
        except Exception as exc:
            if isinstance(exc, grpc.aio.AbortError):
                raise
            code, message = status_for(exc)
            await context.abort(code, message)

    return wrapper
