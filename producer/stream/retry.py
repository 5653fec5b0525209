"""When to try again: which failures are worth retrying, how long to wait, and when to give up.

The producer retries two things: a whole stream that broke (the engine was killed, restarted or
reloaded, a replica went away) and a single request the engine answered with a transient error
(RESOURCE_EXHAUSTED: shed under load; UNAVAILABLE). Waits grow exponentially with jitter, so a
fleet of producers does not reconnect in lockstep; and every retry is bounded by time *without
progress* (no answer at all), not by attempt count, so a long run survives many restarts while
a dead engine is given up on after ``max_retry_seconds``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

# Stream-level statuses after which a new stream may succeed: the engine went away or restarted
# (UNAVAILABLE, connection reset: UNKNOWN/INTERNAL, RST_STREAM), shut down (CANCELLED by the
# server), was overloaded (RESOURCE_EXHAUSTED) or stopped answering (DEADLINE_EXCEEDED, our own
# answer timeout). Anything else (UNAUTHENTICATED, PERMISSION_DENIED, UNIMPLEMENTED,
# INVALID_ARGUMENT, ...) would fail the same way again: it ends the run at once.
RETRYABLE_STREAM_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)
# Per-request error answers worth sending again; any other error answer is final for its rows.
RETRYABLE_ANSWER_CODES = frozenset({"RESOURCE_EXHAUSTED", "UNAVAILABLE"})


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with "equal jitter": attempt n waits a random time between half and
    all of ``min(maximum, initial * 2**n)``; never zero, never above ``maximum``."""

    initial: float = 0.1
    maximum: float = 5.0
    rng: random.Random = random.Random()  # noqa: RUF009 (one shared generator is intended)

    def delay(self, attempt: int) -> float:
        ceiling = min(self.maximum, self.initial * 2.0 ** min(attempt, 60))
        return self.rng.uniform(ceiling / 2, ceiling)


class ProgressDeadline:
    """ "Give up after ``limit`` seconds without progress": ``progress()`` restarts the clock."""

    def __init__(self, limit: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._last = clock()

    def progress(self) -> None:
        self._last = self._clock()

    def remaining(self) -> float:
        return self.limit - (self._clock() - self._last)

    def expired(self) -> bool:
        return self.remaining() <= 0


@dataclass(frozen=True)
class Recovery:
    """How the streaming client recovers: from ProducerSettings (see producer/settings.py)."""

    max_retry_seconds: float = 60.0
    answer_timeout: float = 30.0
    backoff: Backoff = Backoff()
