"""The streaming client: batches go out on one ``ScoreStream``, answers come back in order.

Why the sync gRPC API and not grpc.aio: the producer runs one stream and nothing else, so two
plain threads say it best. The calling thread feeds requests (reading the source, pacing, waiting
for a window slot, all of which may block, none of which is async); a reader thread takes the
answers. gRPC's own thread pulls requests from a queue (the request iterator), as in Triton's
streaming client: a sentinel ends the stream, ``close()`` always sends it.

The in-flight window is a semaphore of ``max_in_flight`` slots: the feeder takes a slot before it
queues a request and the reader gives it back when that request's answer arrives. So at most
``max_in_flight`` requests are queued or on the wire unanswered, and a slow engine holds the
producer back instead of piling requests up in memory.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator

import grpc
import numpy as np

from datasentinel.v1 import scoring_pb2, scoring_pb2_grpc
from producer.ledger import Error, Ledger, Message, Outcome, Result
from producer.sources import Batch

log = logging.getLogger(__name__)

# Reconnect quickly while waiting for an engine to come up: gRPC's default backoff (1 s growing
# to 120 s) would leave a channel refusing calls long after the engine started listening.
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]

_STATUS_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
_END = object()


def open_channel(target: str) -> grpc.Channel:
    return grpc.insecure_channel(target, options=CHANNEL_OPTIONS)


def to_request(request_id: str, batch: Batch) -> scoring_pb2.ScoreRequest:
    """One batch as a request: raw little-endian float32 rows and one id per row."""
    vectors = np.ascontiguousarray(batch.vectors, dtype="<f4")
    rows, cols = vectors.shape
    raw = scoring_pb2.RawVectors(data=vectors.tobytes(), rows=rows, cols=cols)
    # ids as a list of Python ints: ~1.7x faster than extending from the numpy array (measured:
    # 42 us vs 71 us per 1024-row request).
    return scoring_pb2.ScoreRequest(request_id=request_id, ids=batch.ids.tolist(), raw=raw)


def from_response(response: scoring_pb2.ScoreStreamResponse) -> Result | Error | None:
    """One stream answer as plain arrays (None when it holds neither a result nor an error)."""
    outcome = response.WhichOneof("outcome")
    if outcome == "result":
        r = response.result
        return Result(
            request_id=response.request_id,
            ids=np.array(r.ids, dtype=np.uint64),
            scores=np.array(r.scores, dtype=np.float32),
            is_anomaly=np.array(r.is_anomaly, dtype=bool),
            threshold=r.threshold,
            model_version=r.model_version,
        )
    if outcome == "error":
        e = response.error
        code = _STATUS_NAMES.get(e.code, f"code {e.code}")
        ids = np.array(e.ids, dtype=np.uint64)
        return Error(request_id=response.request_id, reason=f"{code}: {e.message}", ids=ids)
    return None


def describe_rpc_error(error: grpc.RpcError) -> str:
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else str(error)
    return f"{code.name if code else 'UNKNOWN'}: {details}"


class _Outgoing:
    __slots__ = ("message", "request")

    def __init__(self, message: Message, request: scoring_pb2.ScoreRequest) -> None:
        self.message = message
        self.request = request


class _RequestQueue:
    """The request iterator gRPC pulls from: what the feeder puts, until the sentinel.

    Bounded by the window (+1 for the sentinel), so ``put`` never blocks."""

    def __init__(self, ledger: Ledger, max_in_flight: int) -> None:
        self._ledger = ledger
        self._queue: queue.Queue = queue.Queue(maxsize=max_in_flight + 1)

    def put(self, item: _Outgoing) -> None:
        self._queue.put(item)

    def close(self) -> None:
        self._queue.put(_END)

    def __iter__(self) -> Iterator[scoring_pb2.ScoreRequest]:
        return self

    def __next__(self) -> scoring_pb2.ScoreRequest:
        item = self._queue.get()
        if item is _END:
            raise StopIteration
        self._ledger.mark_sent(item.message)
        return item.request


class ScoreStreamClient:
    """Runs one ``ScoreStream``: feeds batches within the window, applies answers to the ledger."""

    def __init__(
        self,
        channel: grpc.Channel,
        ledger: Ledger,
        max_in_flight: int,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        self._stub = scoring_pb2_grpc.AnomalyScorerStub(channel)
        self._ledger = ledger
        self._max_in_flight = max_in_flight
        self._window = threading.Semaphore(max_in_flight)
        self._requests = _RequestQueue(ledger, max_in_flight)
        self._on_outcome = on_outcome
        self.ended = threading.Event()  # the answer stream is over (done, broken or cancelled)
        self.error: str | None = None  # why the stream ended early, if it did
        self.interrupted = False

    def run(self, batches: Iterable[Batch]) -> None:
        """Streams every batch and waits for the answers; returns when the stream is over, with
        every row of the ledger answered or failed. Ctrl-C cancels the stream."""
        call = self._stub.ScoreStream(self._requests)
        reader = threading.Thread(target=self._read, args=(call,), name="producer-reader")
        reader.start()
        try:
            try:
                self._feed(batches)
            finally:
                self._requests.close()
            reader.join()
        except KeyboardInterrupt:
            self.interrupted = True
            call.cancel()
            reader.join()
            self.error = "cancelled (Ctrl-C)"
        except BaseException:
            call.cancel()
            reader.join()
            raise
        self._ledger.close(self.error)

    def _feed(self, batches: Iterable[Batch]) -> None:
        for seq, batch in enumerate(batches):
            message = self._ledger.queue(seq, batch.ids)
            request = to_request(message.request_id, batch)  # built while the window may be full
            self._window.acquire()
            if self.ended.is_set():
                return
            self._requests.put(_Outgoing(message, request))

    def _read(self, call: Iterator[scoring_pb2.ScoreStreamResponse]) -> None:
        try:
            for response in call:
                outcome = self._ledger.answer(from_response(response))
                if outcome.message is not None:
                    self._window.release()
                if self._on_outcome is not None:
                    self._on_outcome(outcome)
        except grpc.RpcError as e:
            self.error = describe_rpc_error(e)
        except Exception as e:  # a bug here must end the stream, not hang the feeder
            log.exception("failed to handle an answer; cancelling the stream")
            self.error = f"producer error: {e!r}"
            call.cancel()
        finally:
            self.ended.set()
            self._window.release(self._max_in_flight)  # wake a feeder waiting for a slot
