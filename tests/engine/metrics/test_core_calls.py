"""gRPC core's call counts: read from channelz as grpcio exposes it, copied as increments."""

import asyncio
import json

import grpc
from grpc._cython import cygrpc
from prometheus_client import CollectorRegistry

from datasentinel.engine.metrics.core_calls import CoreCalls, core_totals


def value(registry, outcome) -> float:
    return registry.get_sample_value("datasentinel_grpc_calls_total", {"outcome": outcome}) or 0.0


def test_channelz_still_answers_as_core_totals_reads_it():
    """Pins grpcio's private channelz call: a grpcio upgrade that moves it fails here, not as
    silently missing counts."""
    servers = json.loads(cygrpc.channelz_get_servers(0))
    assert isinstance(servers, dict)
    assert set(core_totals()) == {"started", "succeeded", "failed"}


def test_core_totals_count_calls_on_a_real_server():
    async def run() -> tuple[dict, dict]:
        server = grpc.aio.server()  # no handlers: every call fails UNIMPLEMENTED in the core
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        before = core_totals()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary("/nothing.Here/Call")
            for _ in range(3):
                try:
                    await call(b"", timeout=5)
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() == grpc.StatusCode.UNIMPLEMENTED
        after = core_totals()
        await server.stop(None)
        return before, after

    before, after = asyncio.run(run())
    assert after["started"] - before["started"] == 3
    assert after["failed"] - before["failed"] == 3


def test_poll_adds_only_what_is_new():
    totals = {"started": 10, "succeeded": 7, "failed": 2}
    registry = CollectorRegistry()
    calls = CoreCalls(totals=lambda: dict(totals), registry=registry)
    calls.poll()
    calls.poll()
    assert value(registry, "started") == 10 and value(registry, "failed") == 2
    totals.update(started=15, succeeded=11)
    calls.poll()
    assert value(registry, "started") == 15 and value(registry, "succeeded") == 11
    assert value(registry, "failed") == 2
