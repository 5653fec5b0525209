"""The plumbing of one stream: the request iterator gRPC pulls from, what is known about a
``ScoreStream`` call, and the rows waiting to be put on one.

gRPC's own thread pulls requests from a queue (the request iterator), as in Triton's streaming
client: a sentinel ends the stream, and it is always sent. Each request is marked sent in the
ledger as gRPC takes it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import numpy as np

from datasentinel.producer.stream.ledger import Ledger, Message
from datasentinel.v1 import scoring_pb2

_END = object()


@dataclass(eq=False)
class _Send:
    """Rows to put on a stream: a request built once, sent again as often as needed."""

    seq: int
    ids: np.ndarray
    request: scoring_pb2.ScoreRequest
    attempt: int = 0  # 0: first send
    not_before: float = 0.0  # a retried error answer waits its backoff
    reason: str | None = None  # why it is sent again (the last failure), for giving up


class _RequestQueue:
    """The request iterator gRPC pulls from: what the feeder puts, until the sentinel.

    Unbounded (the window bounds it), so closing never blocks, even when the engine stopped
    reading and gRPC stopped pulling."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._queue: queue.SimpleQueue = queue.SimpleQueue()

    def put(self, message: Message) -> None:
        self._queue.put(message)

    def close(self) -> None:
        self._queue.put(_END)

    def __iter__(self) -> Iterator[scoring_pb2.ScoreRequest]:
        return self

    def __next__(self) -> scoring_pb2.ScoreRequest:
        message = self._queue.get()
        if message is _END:
            raise StopIteration
        self._ledger.mark_sent(message)
        return message.payload


class _Stream:
    """One ``ScoreStream`` call and what is known about it."""

    def __init__(self, number: int, requests: _RequestQueue) -> None:
        self.number = number
        self.requests = requests
        self.call = None
        self.in_flight = 0  # messages put on this stream and not answered
        self.ended = threading.Event()  # the answers are over (done, broken or cancelled)
        self.error: str | None = None
        self.code: grpc.StatusCode | None = None
        self.fatal = False  # a producer bug ended it: retrying would not help
