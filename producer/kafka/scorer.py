"""Batches of events to the engine (unary ``Score`` calls, several in flight) and their answers
sorted into what the bridge does next: write verdicts, send again later, or dead-letter.

Why unary Score and not the producer's ScoreStream client: that client accounts for a finite
input numbered 0..n-1 (its ledger); the bridge's input never ends and is accounted per
partition offset (offsets.py). A unary call per batch carries the batch's own answer, so a
broken connection costs only the calls in flight, each sent again after a backoff: the same
recovery policy as the producer's (stream/retry.py: which codes are transient, the backoff).

Answers are taken in the order the batches were sent, so verdicts of one partition leave in
input order, except a batch sent again after a transient error, which goes after the ones sent
since.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass, field

import grpc
import numpy as np

from datasentinel.producer.kafka.codec import Event
from datasentinel.producer.stream.messages import RequestOptions
from datasentinel.producer.stream.retry import RETRYABLE_STREAM_CODES, Backoff
from datasentinel.v1 import scoring_pb2, scoring_pb2_grpc

log = logging.getLogger(__name__)

# Errors a new attempt would meet again: the bridge stops (exit 1) rather than dead-letter
# every event of a misconfigured deployment.
FATAL_CODES = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)


@dataclass
class Batch:
    events: list[Event]
    attempt: int = 0
    not_before: float = 0.0
    future: grpc.Future | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Scored:
    batch: Batch
    rows: list[dict]  # per event, in the batch's order: the engine's answer


@dataclass(frozen=True)
class Failed:
    """The engine refused the batch for good (e.g. INVALID_ARGUMENT): dead-letter its events."""

    batch: Batch
    reason: str


class FatalEngineError(Exception):
    """The engine refuses this bridge (auth, unimplemented): no point going on."""


class Scorer:
    def __init__(
        self,
        channel: grpc.Channel,
        options: RequestOptions,
        max_in_flight: int,
        answer_timeout: float,
        backoff: Backoff | None = None,
        clock=time.monotonic,
    ) -> None:
        self._stub = scoring_pb2_grpc.AnomalyScorerStub(channel)
        self._options = options
        self._max_in_flight = max_in_flight
        self._timeout = answer_timeout
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._in_flight: deque[Batch] = deque()
        self._waiting: deque[Batch] = deque()  # sent again after a transient error, in order
        self._ids = itertools.count()
        self.retries_by_code: dict[str, int] = {}

    @property
    def troubled(self) -> bool:
        """True while a batch waits out a backoff: the engine sheds load or is unreachable."""
        return bool(self._waiting)

    @property
    def busy(self) -> bool:
        return bool(self._in_flight or self._waiting)

    def has_room(self) -> bool:
        return len(self._in_flight) < self._max_in_flight and not self._waiting

    def submit(self, events: list[Event]) -> None:
        self._send(Batch(events))

    def resend_due(self) -> None:
        """Sends batches whose backoff is over (oldest first), within the in-flight window."""
        now = self._clock()
        while (
            self._waiting
            and self._waiting[0].not_before <= now
            and len(self._in_flight) < self._max_in_flight
        ):
            self._send(self._waiting.popleft())

    def answers(self) -> list[Scored | Failed]:
        """Finished batches, in the order sent; transient failures are queued to be sent again.
        Raises FatalEngineError."""
        done: list[Scored | Failed] = []
        while self._in_flight and self._in_flight[0].future.done():
            batch = self._in_flight.popleft()
            outcome = self._outcome(batch)
            if outcome is not None:
                done.append(outcome)
        return done

    def wait(self, timeout: float) -> None:
        """Blocks until the oldest call finishes, or ``timeout``."""
        if self._in_flight:
            try:
                self._in_flight[0].future.exception(timeout=timeout)
            except grpc.FutureTimeoutError:
                pass
        elif timeout > 0:
            time.sleep(timeout)

    def drop(self, keep) -> None:
        """Forgets waiting events for which ``keep(event)`` is false (partitions revoked): they
        are not sent again, and their new owner reads them. (Batches in flight keep their
        events, which their answers' rows match; the bridge skips what it no longer owns.)"""
        for batch in self._waiting:
            batch.events = [e for e in batch.events if keep(e)]
        self._waiting = deque(b for b in self._waiting if b.events)

    def _send(self, batch: Batch) -> None:
        vectors = np.stack([e.vector for e in batch.events]).astype("<f4", copy=False)
        rows, cols = vectors.shape
        request = scoring_pb2.ScoreRequest(
            request_id=str(next(self._ids)),
            ids=list(range(rows)),
            raw=scoring_pb2.RawVectors(data=vectors.tobytes(), rows=rows, cols=cols),
            top_features=self._options.top_features,
        )
        if self._options.threshold is not None:
            request.threshold = self._options.threshold
        batch.future = self._stub.Score.future(request, timeout=self._timeout)
        self._in_flight.append(batch)

    def _outcome(self, batch: Batch) -> Scored | Failed | None:
        error = batch.future.exception()
        if error is None:
            return Scored(batch, rows_of(batch.future.result(), len(batch.events)))
        code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
        reason = f"{code.name}: {error.details() if isinstance(error, grpc.Call) else error}"
        if code in FATAL_CODES:
            raise FatalEngineError(f"the engine refuses the bridge: {reason}")
        if code in RETRYABLE_STREAM_CODES:
            delay = self._backoff.delay(batch.attempt)
            self.retries_by_code[code.name] = self.retries_by_code.get(code.name, 0) + 1
            if batch.attempt == 0 or batch.attempt % 10 == 0:
                log.warning(
                    "engine answered %s; sending %d event(s) again in %.2f s",
                    reason,
                    len(batch.events),
                    delay,
                )
            batch.attempt += 1
            batch.not_before = self._clock() + delay
            batch.future = None
            self._waiting.append(batch)
            return None
        return Failed(batch, f"engine refused it: {reason}")


def rows_of(response: scoring_pb2.ScoreResponse, n: int) -> list[dict]:
    """The answer per event (request ids are positions 0..n-1 in the batch)."""
    rows: list[dict] = [{} for _ in range(n)]
    severity = list(response.severity)
    explanations = list(response.explanations)
    for j, i in enumerate(response.ids):
        row = {
            "score": float(response.scores[j]),
            "is_anomaly": bool(response.is_anomaly[j]),
            "severity": float(severity[j]) if severity else None,
            "threshold": float(response.threshold),
            "model_version": response.model_version,
            "top_features": [],
        }
        if explanations:
            e = explanations[j]
            row["top_features"] = [
                {"name": c.name, "share": c.share, "value": c.value, "expected": c.expected}
                for c in e.top_features
            ]
            if e.missing_features:
                row["missing_features"] = list(e.missing_features)
        rows[int(i)] = row
    return rows
