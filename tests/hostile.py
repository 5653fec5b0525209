"""Hostile clients, shared by the tests that must survive them (tests/e2e/test_hostile_clients.py)
and the benchmark that measures them before and after (benchmarks/overload.py): floods of health
Watch streams or idle streams, huge messages without a token, and the token holder and probes
that must still be served meanwhile."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from datasentinel.v1 import scoring_pb2 as pb
from tests.conftest import SERVICE

TOKEN = "hostile-tests-token"
SCORE = "/datasentinel.v1.AnomalyScorer/Score"
STREAM = "/datasentinel.v1.AnomalyScorer/ScoreStream"
WATCH = "/grpc.health.v1.Health/Watch"


def score_request(dim: int = 8) -> bytes:
    """One vector of ones, for a model of ``dim`` features."""
    raw = pb.RawVectors(data=np.ones((1, dim), "<f4").tobytes(), rows=1, cols=dim)
    return pb.ScoreRequest(ids=[1], raw=raw).SerializeToString()


REQUEST = score_request()


def token_holder_served(address: str, calls: int = 20, request: bytes = REQUEST) -> int:
    """Score calls with the token that succeed, one after another, each with a 5 s deadline."""
    ok = 0
    with grpc.insecure_channel(address) as channel:
        score = channel.unary_unary(SCORE)
        for _ in range(calls):
            try:
                score(request, timeout=5, metadata=[("authorization", f"Bearer {TOKEN}")])
                ok += 1
            except grpc.RpcError:
                pass
    return ok


def probes_answered(address: str, probes: int = 10) -> int:
    answered = 0
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for _ in range(probes):
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5)
                answered += status.status == health_pb2.HealthCheckResponse.SERVING
            except grpc.RpcError:
                pass
    return answered


class Flood:
    """Holds ``calls`` open calls of ``method`` (Watch, or a request stream that sends nothing)
    on a thread of its own, over ``channels`` connections to ``address``; ``codes`` collects how
    the refused ones ended."""

    def __init__(self, address: str, method: str, calls: int, channels: int) -> None:
        self.address, self.method, self.calls, self.channels = address, method, calls, channels
        self.codes: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> Flood:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)

    def ended(self) -> int:
        return sum(self.codes.values())

    async def _run(self) -> None:
        options = [("grpc.use_local_subchannel_pool", 1)]  # one connection per channel
        channels = [
            grpc.aio.insecure_channel(self.address, options=options) for _ in range(self.channels)
        ]
        tasks = [
            asyncio.create_task(self._one(channels[i % len(channels)])) for i in range(self.calls)
        ]
        while not self._stop.is_set():
            await asyncio.sleep(0.05)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for channel in channels:
            await channel.close()

    async def _one(self, channel: grpc.aio.Channel) -> None:
        if self.method == WATCH:
            request = health_pb2.HealthCheckRequest(service=SERVICE).SerializeToString()
            call = channel.unary_stream(self.method)(request)
        else:
            call = channel.stream_stream(self.method)()  # opened, and nothing ever sent
        code = await call.code()
        self.codes[code.name] = self.codes.get(code.name, 0) + 1


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def rss_mb(pid: int) -> float:
    """Resident memory of the engine process and its children (a supervisor's workers)."""
    pids = [pid]
    try:
        pids += map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    except OSError:
        pass
    total = 0
    for p in pids:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    return total / 1024


def huge_calls(
    address: str, pid: int, calls: int = 16, mb: int = 64
) -> tuple[list[str], float, float, float]:
    """``calls`` concurrent Score calls of ``mb`` MB each, without a token, over 4 connections;
    their codes and the engine's RSS (MB) before, at its peak (sampled every 20 ms) and after."""
    rows = (mb << 20) // (8 * 4)
    big = pb.ScoreRequest(
        raw=pb.RawVectors(data=bytes(rows * 8 * 4), rows=rows, cols=8)
    ).SerializeToString()
    before = peak = rss_mb(pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mb(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    codes: list[str] = []

    def call(channel) -> None:
        try:
            channel.unary_unary(SCORE)(big, timeout=60)
            codes.append("OK")
        except grpc.RpcError as exc:
            codes.append(exc.code().name)

    options = [("grpc.use_local_subchannel_pool", 1), ("grpc.max_send_message_length", -1)]
    channels = [grpc.insecure_channel(address, options=options) for _ in range(4)]
    callers = [threading.Thread(target=call, args=(channels[i % 4],)) for i in range(calls)]
    for t in callers:
        t.start()
    for t in callers:
        t.join(120)
    done.set()
    sampler.join()
    for channel in channels:
        channel.close()
    time.sleep(0.5)
    return codes, before, peak, rss_mb(pid)
