"""gRPC core's own call counts, as Prometheus counters: the calls the engine's code never saw.

Past what one process's event loop can pick up, calls wait in gRPC's core queue, ahead of any
Python code; when that queue is long (1,000 calls by default) gRPC refuses new ones itself,
and the client sees CANCELLED (measured: ~2/3 of calls at 4,096 callers on 2 cores). No
interceptor or handler runs for those, so only the core's own counts (channelz, on by default)
can show them. They are copied into counters every ``POLL_SECONDS``, as increments, so that
workers' values add up like the others.

``cygrpc.channelz_get_servers`` is the call grpcio's own channelz service makes; a test pins it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging

from grpc._cython import cygrpc
from prometheus_client import REGISTRY, CollectorRegistry, Counter

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0
OUTCOMES = {"started": "callsStarted", "succeeded": "callsSucceeded", "failed": "callsFailed"}


def core_totals() -> dict[str, int]:
    """Calls started, succeeded and failed on this process's gRPC servers, since start."""
    servers = json.loads(cygrpc.channelz_get_servers(0)).get("server", [])
    return {
        outcome: sum(int(s.get("data", {}).get(key, 0)) for s in servers)
        for outcome, key in OUTCOMES.items()
    }


class CoreCalls:
    def __init__(self, totals=core_totals, registry: CollectorRegistry = REGISTRY) -> None:
        self.counter = Counter(
            "datasentinel_grpc_calls",
            "Calls as gRPC's core counted them, by outcome (started, succeeded, failed), "
            "including those the engine's code never saw: started - succeeded - failed, less "
            "the calls in progress, is what gRPC's core dropped by itself under overload "
            "(clients see CANCELLED).",
            ["outcome"],
            registry=registry,
        )
        self._totals = totals
        self._seen = dict.fromkeys(OUTCOMES, 0)

    def poll(self) -> None:
        totals = self._totals()
        for outcome, total in totals.items():
            if total > self._seen[outcome]:
                self.counter.labels(outcome).inc(total - self._seen[outcome])
                self._seen[outcome] = total

    async def run(self, interval: float = POLL_SECONDS) -> None:
        """Polls until cancelled; a last poll on the way out keeps the final counts."""
        try:
            while True:
                self.poll()
                await asyncio.sleep(interval)
        finally:
            self.poll()


@functools.cache
def core_calls() -> CoreCalls:
    """This process's copy of the core counts (Prometheus metrics are process-global)."""
    return CoreCalls()
