"""Fair admission of calls: budgets that one client, or a stranger, cannot drain for everyone.

gRPC's own ``maximum_concurrent_rpcs`` counts every call alike: 1,200 health ``Watch`` streams
(no token needed, by design) or 512 idle streams from one client took all its slots, and token
holders and probes got RESOURCE_EXHAUSTED (issue 18, finding 1). Here calls draw on separate
budgets, each with a total and a per-client-address share:

- health ``Check``: no budget (answered from memory at once; probes must always get through);
- health ``Watch`` streams: their own small budget, so they never take a scoring slot;
- every other call (scoring, model info, OIP, reflection): ENGINE_MAX_CONCURRENT_RPCS in total,
  ENGINE_MAX_CALLS_PER_PEER from one address;
- a request stream that sends nothing for ENGINE_STREAM_IDLE_SECONDS is closed (UNAVAILABLE:
  nothing of it is lost, a client reopens it when it has data).

Calls without a valid token never get here: the token check (engine/security/auth.py) refuses
them before their message is read. Each refusal is counted and logged (engine/metrics/refusals).
The budgets wrap the handlers when they are registered, not in an interceptor: a handler knows
its peer (an interceptor does not), and registration costs nothing per call.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import grpc

from datasentinel.engine.metrics import refusals as reasons
from datasentinel.engine.metrics.refusals import refusals

HEALTH_CHECK = "/grpc.health.v1.Health/Check"
HEALTH_WATCH = "/grpc.health.v1.Health/Watch"


@dataclass(frozen=True)
class CallLimits:
    calls: int
    calls_per_peer: int
    watches: int
    watches_per_peer: int
    stream_idle_seconds: float  # 0: streams may stay idle


class CallBudget:
    """Calls held at once, in total and per client address. Event-loop confined."""

    def __init__(self, total: int, per_peer: int, what: str, setting: str, peer_setting: str):
        self.total, self.per_peer, self.held = total, per_peer, 0
        self.by_peer: Counter[str] = Counter()
        self._what, self._setting, self._peer_setting = what, setting, peer_setting

    def take(self, peer: str) -> tuple[str, str] | None:
        """Takes a slot for ``peer``; or returns why not (reason label, message for the
        client)."""
        if self.held >= self.total:
            return self._total_reason, (
                f"the engine is serving its limit of {self.total} {self._what} ({self._setting}); "
                "retry with backoff, or spread the load over more instances"
            )
        if self.by_peer[peer] >= self.per_peer:
            return reasons.PEER_LIMIT, (
                f"this client address already has {self.per_peer} {self._what} open, its share "
                f"({self._peer_setting}); finish some first, or spread over more clients"
            )
        self.held += 1
        self.by_peer[peer] += 1
        return None

    def give(self, peer: str) -> None:
        self.held -= 1
        left = self.by_peer[peer] - 1
        if left:
            self.by_peer[peer] = left
        else:
            del self.by_peer[peer]  # peers come and go: keep only the ones with calls open

    @property
    def _total_reason(self) -> str:
        return reasons.WATCH_LIMIT if self._what == "health watches" else reasons.CALL_LIMIT


class StreamIdle(Exception):
    """A request stream sent nothing for the idle limit."""


def peer_address(context: grpc.aio.ServicerContext) -> str:
    """The client's address without its port ("ipv4:127.0.0.2"): the unit of a fair share
    (one client opens many connections, each from a new port)."""
    peer = context.peer() or ""
    host, colon, port = peer.rpartition(":")
    return host if colon and port.isdigit() and host.count(":") >= 1 else peer


class CallAdmission:
    """Wraps method handlers with their budget: ``guard`` is called once per method, at
    registration."""

    def __init__(self, limits: CallLimits) -> None:
        self.limits = limits
        self.calls = CallBudget(
            limits.calls,
            limits.calls_per_peer,
            "calls",
            "ENGINE_MAX_CONCURRENT_RPCS",
            "ENGINE_MAX_CALLS_PER_PEER",
        )
        self.watches = CallBudget(
            limits.watches,
            limits.watches_per_peer,
            "health watches",
            "ENGINE_MAX_HEALTH_WATCHES",
            "ENGINE_MAX_HEALTH_WATCHES_PER_PEER",
        )

    def guard(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        if method == HEALTH_CHECK:
            return handler
        budget = self.watches if method == HEALTH_WATCH else self.calls
        rpc = method.rsplit("/", 1)[-1]
        return _guarded(handler, budget, rpc, self.limits.stream_idle_seconds)


async def _enter(budget: CallBudget, rpc: str, peer: str, context) -> None:
    refusal = budget.take(peer)
    if refusal is not None:
        reason, message = refusal
        refusals().refused(rpc, grpc.StatusCode.RESOURCE_EXHAUSTED.name, reason, peer)
        await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, message)


async def _idle_limited(requests: AsyncIterator, seconds: float) -> AsyncIterator:
    """``requests``, ending in StreamIdle when the client takes longer than ``seconds`` to send
    the next one. Only time spent waiting for the client counts, not time the consumer holds a
    request (flow control may hold it while answers go out).

    One timer per stream, moved on only when it fires, and a time stamp per message: measured
    at 6.6 us per message with an ``asyncio.timeout`` around each read, this is under 1 us
    (single-vector streams cost the engine ~100 us per message)."""
    loop = asyncio.get_running_loop()
    iterator = aiter(requests)
    since: float | None = None  # when the consumer began waiting for the next request
    reader: asyncio.Task | None = None
    fired = False

    def check() -> None:
        nonlocal timer, fired
        now = loop.time()
        if since is not None and now - since >= seconds:
            fired = True
            reader.cancel()
        else:
            timer = loop.call_at((now if since is None else since) + seconds, check)

    timer = loop.call_at(loop.time() + seconds, check)
    try:
        while True:
            since, reader = loop.time(), asyncio.current_task()
            try:
                request = await anext(iterator)
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                if fired and reader.uncancel() == 0:  # ours alone: the stream went idle
                    raise StreamIdle(
                        f"the stream sent nothing for {seconds:g} s and was closed "
                        "(ENGINE_STREAM_IDLE_SECONDS); open a new one when there is data"
                    ) from None
                raise
            finally:
                since = None
            yield request
    finally:
        timer.cancel()


async def _end_idle(exc: StreamIdle, rpc: str, peer: str, context) -> None:
    refusals().refused(rpc, grpc.StatusCode.UNAVAILABLE.name, reasons.IDLE_STREAM, peer)
    await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))


def _guarded(
    handler: grpc.RpcMethodHandler, budget: CallBudget, rpc: str, idle_seconds: float
) -> grpc.RpcMethodHandler:
    kind = (
        ("stream" if handler.request_streaming else "unary")
        + "_"
        + ("stream" if handler.response_streaming else "unary")
    )
    behaviour = getattr(handler, kind)
    wrap: Callable = _generator if inspect.isasyncgenfunction(behaviour) else _coroutine
    limit = idle_seconds if handler.request_streaming and idle_seconds > 0 else 0
    return handler._replace(**{kind: wrap(behaviour, budget, rpc, limit)})


def _coroutine(behaviour: Callable, budget: CallBudget, rpc: str, idle: float) -> Callable:
    async def guarded(request, context):
        peer = peer_address(context)
        await _enter(budget, rpc, peer, context)
        try:
            if not idle:
                return await behaviour(request, context)
            try:
                return await behaviour(_idle_limited(request, idle), context)
            except StreamIdle as exc:
                await _end_idle(exc, rpc, peer, context)
        finally:
            budget.give(peer)

    return guarded


def _generator(behaviour: Callable, budget: CallBudget, rpc: str, idle: float) -> Callable:
    async def guarded(request, context):
        peer = peer_address(context)
        await _enter(budget, rpc, peer, context)
        try:
            requests = _idle_limited(request, idle) if idle else request
            try:
                async for answer in behaviour(requests, context):
                    yield answer
            except StreamIdle as exc:
                await _end_idle(exc, rpc, peer, context)
        finally:
            budget.give(peer)

    return guarded
