"""Every call the engine refuses or loses, counted by status code and reason, and logged at a
bounded rate: an attack (a flood of calls without a token, of health Watch streams, of idle
streams from one address) must show on a dashboard and in the log, not only at the victim.

One log line per reason per ``LOG_INTERVAL_SECONDS`` at most: the first refusal after a quiet
spell is logged at once, the ones after it are summed into one line when the interval is over
(a flood of 100,000 refused calls must not become 100,000 log lines).
"""

from __future__ import annotations

import functools
import logging
import threading
import time

from prometheus_client import REGISTRY, CollectorRegistry, Counter

from datasentinel.engine.metrics.collectors import metrics

log = logging.getLogger(__name__)

LOG_INTERVAL_SECONDS = 10.0

# Reasons, as the metric's ``reason`` label: what the operator acts on.
UNAUTHENTICATED = "unauthenticated"  # no token, or a wrong one (unknown methods included)
CALL_LIMIT = "call_limit"  # ENGINE_MAX_CONCURRENT_RPCS calls already in progress
PEER_LIMIT = "peer_limit"  # ENGINE_MAX_CALLS_PER_PEER from this client address
WATCH_LIMIT = "watch_limit"  # health Watch streams over their own budget
IDLE_STREAM = "idle_stream"  # a stream that sent nothing for ENGINE_STREAM_IDLE_SECONDS
SHED = "shed"  # the scoring core is full (ENGINE_MAX_INFLIGHT_ROWS, ENGINE_MAX_QUEUE)
TOO_LARGE = "too_large"  # a message over ENGINE_MAX_MESSAGE_MB
CANCELLED = "cancelled"  # the client cancelled, or its deadline passed, before the answer


class Refusals:
    """The ``datasentinel_refused_calls`` counter and its rate-limited log."""

    def __init__(
        self,
        clock=time.monotonic,
        interval: float = LOG_INTERVAL_SECONDS,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.counter = Counter(
            "datasentinel_refused_calls",
            "Calls (or stream messages) refused or ended without an answer, by gRPC status code "
            "and reason: unauthenticated, call_limit, peer_limit, watch_limit, idle_stream, "
            "shed, too_large, cancelled. Anything but 'cancelled' rising means clients are "
            "being turned away.",
            ["code", "reason"],
            registry=registry,
        )
        self._clock = clock
        self._interval = interval
        self._lock = threading.Lock()  # the metrics HTTP thread never calls in, workers might
        self._last_logged: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}
        self._latest: dict[str, tuple[str, str, str]] = {}
        self._flush: dict[str, threading.Timer] = {}

    def refused(self, rpc: str, code: str, reason: str, peer: str = "") -> None:
        """A call refused before it reached the servicer: counted here and in
        datasentinel_requests (by its code), and logged."""
        metrics().observe_request(rpc, code, 0.0)
        self.count(rpc, code, reason, peer)

    def count(self, rpc: str, code: str, reason: str, peer: str = "") -> None:
        """A refusal already recorded in datasentinel_requests (by the servicer's own path):
        counted by reason, and logged unless a line for ``reason`` went out less than the
        interval ago."""
        self.counter.labels(code, reason).inc()
        if reason != CANCELLED:  # cancellations are the client's choice: metric only
            self._log(rpc, code, reason, peer)

    def _log(self, rpc: str, code: str, reason: str, peer: str) -> None:
        now = self._clock()
        with self._lock:
            count = self._unlogged.get(reason, 0) + 1
            wait = self._last_logged.get(reason, -self._interval) + self._interval - now
            self._latest[reason] = (rpc, code, peer)
            if wait > 0:
                self._unlogged[reason] = count
                if reason not in self._flush:  # the flood may stop: its sum still gets out
                    timer = threading.Timer(wait, self._flush_now, (reason,))
                    timer.daemon = True
                    self._flush[reason] = timer
                    timer.start()
                return
            self._unlogged[reason] = 0
            self._last_logged[reason] = now
        self._write(reason, count, rpc, code, peer)

    def _flush_now(self, reason: str) -> None:
        with self._lock:
            self._flush.pop(reason, None)
            count, self._unlogged[reason] = self._unlogged.get(reason, 0), 0
            self._last_logged[reason] = self._clock()
            rpc, code, peer = self._latest[reason]
        if count:
            self._write(reason, count, rpc, code, peer, summed=True)

    @staticmethod
    def _write(
        reason: str, count: int, rpc: str, code: str, peer: str, summed: bool = False
    ) -> None:
        log.warning(
            "refused %d call(s)%s: %s (%s, latest %s%s)",
            count,
            " since the previous line" if summed else "",
            reason,
            code,
            rpc,
            f" from {peer}" if peer else "",
        )


@functools.cache
def refusals() -> Refusals:
    """This process's refusal counter (Prometheus metrics are process-global)."""
    return Refusals()
