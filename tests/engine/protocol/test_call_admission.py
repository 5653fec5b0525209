"""Call budgets: the arithmetic of shares, and the wrapping of real grpc.aio handlers (unary and
streaming) with their budget and the idle-stream limit. The floods themselves, against engine
processes, are in tests/e2e/test_hostile_clients.py."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from datasentinel.engine.protocol.call_admission import (
    HEALTH_CHECK,
    HEALTH_WATCH,
    CallAdmission,
    CallBudget,
    CallLimits,
    peer_address,
)

HOLD = "/test.Service/Hold"
ECHO = "/test.Service/Echo"
SLOW_ECHO = "/test.Service/SlowEcho"  # holds each request 0.5 s before reading the next


def test_a_budget_gives_each_peer_its_share_and_no_more_than_the_total():
    budget = CallBudget(3, 2, "calls", "TOTAL", "PER_PEER")
    assert budget.take("a") is None and budget.take("a") is None
    reason, message = budget.take("a")
    assert reason == "peer_limit" and "PER_PEER" in message
    assert budget.take("b") is None
    reason, message = budget.take("c")
    assert reason == "call_limit" and "limit of 3 calls (TOTAL)" in message
    budget.give("a")
    assert budget.take("c") is None
    for peer in "abc":
        budget.give(peer)
    assert budget.held == 0 and not budget.by_peer  # peers without calls are forgotten


def test_watch_budget_refusals_name_their_own_reason():
    admission = CallAdmission(CallLimits(10, 10, 1, 1, 0))
    assert admission.watches.take("a") is None
    assert admission.watches.take("b")[0] == "watch_limit"


@pytest.mark.parametrize(
    "peer, address",
    [
        ("ipv4:127.0.0.2:53211", "ipv4:127.0.0.2"),
        ("ipv6:[::1]:40000", "ipv6:[::1]"),
        ("unix:/tmp/engine.sock", "unix:/tmp/engine.sock"),
        ("", ""),
    ],
)
def test_peer_address_drops_only_the_port(peer, address):
    class Context:
        def peer(self):
            return peer

    assert peer_address(Context()) == address


def test_health_check_is_never_budgeted():
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    admission = CallAdmission(CallLimits(0, 0, 0, 0, 1))
    assert admission.guard(HEALTH_CHECK, handler) is handler
    assert admission.guard(HEALTH_WATCH, handler) is not handler


async def serve(admission: CallAdmission, release: asyncio.Event):
    async def hold(request, context):
        await release.wait()
        return request

    async def echo(requests, context):
        async for request in requests:
            yield request

    async def slow_echo(requests, context):
        async for request in requests:
            await asyncio.sleep(0.5)
            yield request

    handlers = {
        SLOW_ECHO: grpc.stream_stream_rpc_method_handler(slow_echo),
        HOLD: grpc.unary_unary_rpc_method_handler(hold),
        HEALTH_WATCH: grpc.unary_unary_rpc_method_handler(hold),
        ECHO: grpc.stream_stream_rpc_method_handler(echo),
    }

    class Handlers(grpc.GenericRpcHandler):
        def service(self, details):
            handler = handlers.get(details.method)
            return handler and admission.guard(details.method, handler)

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((Handlers(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


def test_calls_past_the_budget_are_refused_and_watches_draw_on_their_own():
    async def run():
        admission = CallAdmission(CallLimits(2, 2, 1, 1, 0))
        release = asyncio.Event()
        server, port = await serve(admission, release)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            hold = channel.unary_unary(HOLD)
            held = [asyncio.ensure_future(hold(b"x", timeout=10)) for _ in range(2)]
            while admission.calls.held < 2:
                await asyncio.sleep(0.01)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await hold(b"y", timeout=10)
            watch = asyncio.ensure_future(channel.unary_unary(HEALTH_WATCH)(b"w", timeout=10))
            while admission.watches.held < 1:
                await asyncio.sleep(0.01)
            release.set()
            answers = await asyncio.gather(*held, watch)
        await server.stop(None)
        return refused.value, answers, admission

    refused, answers, admission = asyncio.run(run())
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "ENGINE_MAX_CONCURRENT_RPCS" in refused.details()
    assert answers == [b"x", b"x", b"w"]
    assert admission.calls.held == 0 and admission.watches.held == 0


def test_a_stream_that_sends_nothing_is_closed_and_a_busy_one_is_not():
    async def run():
        admission = CallAdmission(CallLimits(4, 4, 1, 1, 0.3))
        server, port = await serve(admission, asyncio.Event())
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            busy = channel.stream_stream(ECHO)()
            for i in range(8):  # 0.8 s in all, never 0.3 s quiet
                await busy.write(bytes([i]))
                assert await busy.read() == bytes([i])
                await asyncio.sleep(0.1)
            await busy.done_writing()
            assert await busy.code() == grpc.StatusCode.OK

            # The engine holding requests (answers going out slowly) is not the client idling.
            slow = channel.stream_stream(SLOW_ECHO)()
            for i in range(3):
                await slow.write(bytes([i]))
            answers = [await slow.read() for _ in range(3)]
            await slow.done_writing()
            assert answers == [b"\x00", b"\x01", b"\x02"]
            assert await slow.code() == grpc.StatusCode.OK

            idle = channel.stream_stream(ECHO)(timeout=10)
            code, details = await idle.code(), await idle.details()
        await server.stop(None)
        return code, details, admission

    code, details, admission = asyncio.run(run())
    assert code == grpc.StatusCode.UNAVAILABLE
    assert "ENGINE_STREAM_IDLE_SECONDS" in details
    assert admission.calls.held == 0
