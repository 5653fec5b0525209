"""Request decoding that never fails the call: bad bytes become one failed request, not a dead
stream. And responses a handler already has as wire bytes are sent as they are.

gRPC runs the request deserializer inside the call; when it raises, grpc.aio ends the call with
UNKNOWN, and on a stream that ends every message after it too. Here the services are registered
with a deserializer that returns an ``Undecodable`` marker instead (for undecodable bytes, or a
message over the engine's size limit), which the handlers answer like any other bad request:
INVALID_ARGUMENT or RESOURCE_EXHAUSTED, and a stream goes on.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import grpc

from datasentinel.engine.errors import EngineError, InvalidInput, TooLarge
from datasentinel.engine.protocol.status import reject


class Undecodable:
    """Stands in for a request message that could not be read; ``error`` says why."""

    __slots__ = ("error",)

    def __init__(self, error: EngineError) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"Undecodable({self.error!r})"


def check_decoded(request: Any) -> None:
    """Raises the reason when ``request`` is an Undecodable marker (for the converters)."""
    if type(request) is Undecodable:
        raise request.error


def safe_deserializer(parse: Callable[[bytes], Any], max_bytes: int) -> Callable[[bytes], Any]:
    """``parse`` (a message class's FromString) that returns an Undecodable instead of raising,
    and refuses messages over ``max_bytes`` before parsing them."""
    kind = getattr(getattr(parse, "__self__", None), "__name__", "protobuf")

    def deserialize(data: bytes) -> Any:
        if len(data) > max_bytes:
            return Undecodable(
                TooLarge(
                    f"message of {len(data)} bytes exceeds the engine's limit of {max_bytes} "
                    "bytes (ENGINE_MAX_MESSAGE_MB); send fewer vectors per message"
                )
            )
        try:
            return parse(data)
        except Exception as exc:  # DecodeError, or whatever the parser makes of garbage
            return Undecodable(
                InvalidInput(
                    f"the request is not a valid {kind} message ({type(exc).__name__}: {exc}); "
                    "check the client's generated code matches the engine's .proto"
                )
            )

    return deserialize


Guard = Callable[[str, grpc.RpcMethodHandler], grpc.RpcMethodHandler]


def register(
    add_to_server: Callable[[Any, Any], None],
    servicer: Any,
    server: Any,
    max_bytes: int,
    guard: Guard | None = None,
) -> None:
    """Like the generated ``add_*Servicer_to_server(servicer, server)``, but with safe request
    decoding: the generated handlers are taken as they are, their deserializers replaced.
    ``guard(method_path, handler)`` may wrap each handler further (call admission)."""
    recorder = _Recorder()
    add_to_server(servicer, recorder)
    handlers = {
        method: _safe_handler(f"{method}", handler, max_bytes)
        for method, handler in recorder.handlers.items()
    }
    if guard is not None:
        handlers = {
            method: guard(f"/{recorder.service}/{method}", handler)
            for method, handler in handlers.items()
        }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(recorder.service, handlers),)
    )
    server.add_registered_method_handlers(recorder.service, handlers)


class _Recorder:
    """A stand-in server that records what the generated code registers."""

    def __init__(self) -> None:
        self.service = ""
        self.handlers: dict[str, grpc.RpcMethodHandler] = {}

    def add_generic_rpc_handlers(self, handlers) -> None:
        pass  # the same handlers also come through add_registered_method_handlers

    def add_registered_method_handlers(self, service: str, handlers: dict) -> None:
        self.service, self.handlers = service, dict(handlers)


def _safe_handler(
    rpc: str, handler: grpc.RpcMethodHandler, max_bytes: int
) -> grpc.RpcMethodHandler:
    handler = handler._replace(
        request_deserializer=safe_deserializer(handler.request_deserializer, max_bytes),
        response_serializer=passing_bytes(handler.response_serializer),
    )
    if handler.unary_unary is not None:
        # Streams answer a marker message by message (the converters raise its error); a unary
        # call is refused here, so no unary handler ever sees one.
        handler = handler._replace(unary_unary=_refusing_undecodable(rpc, handler.unary_unary))
    return handler


def passing_bytes(serialize: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    """The response serializer, except that a response that is already ``bytes`` (built as wire
    bytes by a converter: no message to build and serialize again) is sent as it is."""

    def serializer(response: Any) -> bytes:
        return response if type(response) is bytes else serialize(response)

    return serializer


def _refusing_undecodable(rpc: str, behaviour: Callable) -> Callable:
    @functools.wraps(behaviour)
    async def handle(request, context: grpc.aio.ServicerContext):
        if type(request) is Undecodable:
            await reject(rpc, request.error, context)
        return await behaviour(request, context)

    return handle
