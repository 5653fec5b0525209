"""The streaming client: batches go out on a ``ScoreStream``, answers come back in order; when
the stream breaks, a new one picks up where it left off.

Why the sync gRPC API and not grpc.aio: the producer runs one stream at a time and nothing else,
so plain threads say it best. The calling thread feeds requests (reading the source, pacing,
waiting for a window slot, all of which may block, none of which is async); a reader thread per
stream takes the answers, and a watchdog thread per stream cancels it when the oldest request
waits longer than the answer timeout (an engine that accepts a stream and never answers).
gRPC's own thread pulls requests from a queue (the request iterator, stream/request_queue.py).

The in-flight window: at most ``max_in_flight`` requests are queued or on the wire unanswered on
the current stream, so a slow engine holds the producer back instead of piling requests up.

Recovery (producer/stream/retry.py): when a stream ends with requests unanswered, the reader is
joined (so no answer of the old stream can arrive late), the ledger hands back the unanswered
messages, and after a backoff and a health check (SERVING again) a new stream sends them first,
then the rest of the input. Transient error answers (RESOURCE_EXHAUSTED, UNAVAILABLE) are sent
again after a backoff too. All of it is bounded by ``max_retry_seconds`` without progress; then
what is left fails with the reason.

Around it, in this folder: messages.py turns batches into requests and answers into arrays,
request_queue.py is the per-stream plumbing, ledger.py keeps the exactly-once accounting.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import grpc

from datasentinel.producer.errors import EngineNotReady
from datasentinel.producer.inputs.sources import Batch
from datasentinel.producer.stream.ledger import Ledger, Message, Outcome
from datasentinel.producer.stream.messages import (
    RequestOptions,
    describe_rpc_error,
    from_response,
    to_request,
)
from datasentinel.producer.stream.request_queue import _RequestQueue, _Send, _Stream
from datasentinel.producer.stream.retry import RETRYABLE_STREAM_CODES, ProgressDeadline, Recovery
from datasentinel.v1 import scoring_pb2_grpc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Numbering:
    """Request and stream numbers, unique across the clients that share one ledger (the ledger
    keys unanswered messages by stream; request_id is the request number). ``next`` on an
    itertools.count is atomic under the GIL, so threads may share it."""

    requests: Iterator[int] = field(default_factory=itertools.count)
    streams: Iterator[int] = field(default_factory=lambda: itertools.count(1))


class ScoreStreamClient:
    """Feeds batches within the window and applies answers to the ledger; when a stream breaks,
    reconnects and sends again what it left unanswered (see the module docstring)."""

    def __init__(
        self,
        channel: grpc.Channel,
        ledger: Ledger,
        max_in_flight: int,
        on_outcome: Callable[[Outcome], None] | None = None,
        *,
        recovery: Recovery | None = None,
        wait_ready: Callable[[float], None] | None = None,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        numbering: Numbering | None = None,
        close_ledger: bool = True,
        options: RequestOptions | None = None,
    ) -> None:
        """``wait_ready(timeout)`` returns when the engine is SERVING again or raises
        EngineNotReady (the app passes producer.channel.readiness.wait_until_serving).

        Several clients may share one ledger and one batch iterator (producer/stream/fanout.py):
        they then share ``numbering`` (request and stream numbers unique across them) and leave
        closing the ledger to their owner (``close_ledger=False``). ``options``: the threshold
        and top_features every request carries."""
        self._stub = scoring_pb2_grpc.AnomalyScorerStub(channel)
        self._ledger = ledger
        self._max_in_flight = max_in_flight
        self._on_outcome = on_outcome
        self._recovery = recovery or Recovery()
        self._wait_ready = wait_ready or (lambda timeout: None)
        self._sleep = sleep
        self._clock = clock
        self._cond = threading.Condition()
        self._resends: deque[_Send] = deque()
        self._batches: Iterator[Batch] | None = None
        self._numbering = numbering or Numbering()
        self._close_ledger = close_ledger
        self._options = options
        self._call: grpc.Call | None = None
        self._cancelled = False
        self._breaks_in_a_row = 0
        self._deadline = ProgressDeadline(self._recovery.max_retry_seconds, clock)
        self.stopped = threading.Event()  # the run is over: done, given up or cancelled
        self.error: str | None = None  # why rows were left unanswered, if they were
        self.interrupted = False
        self.reconnects = 0
        self.reconnect_seconds: list[float] = []  # break noticed -> new stream, per reconnect
        self.stream_errors: list[str] = []  # why each broken stream ended

    def run(self, batches: Iterable[Batch]) -> None:
        """Streams every batch and waits for the answers, over as many streams as it takes;
        returns with every row of the ledger answered or failed. Ctrl-C cancels the stream."""
        self._batches = iter(batches)
        self._deadline.progress()
        try:
            while (broken := self._run_stream()) is not None:
                if not self._recover(broken):
                    break
        except KeyboardInterrupt:
            self.interrupted = True
            self.error = "cancelled (Ctrl-C)"
        finally:
            self.stopped.set()
        if self._close_ledger:
            self._ledger.close(self.error)

    def cancel(self) -> None:
        """Ends the run from another thread (Ctrl-C in the fan-out): the current stream is
        cancelled and no new one is started."""
        with self._cond:
            self._cancelled = True
            call = self._call
            self._cond.notify_all()
        if call is not None:
            call.cancel()

    # -- one stream -------------------------------------------------------------------------

    def _run_stream(self) -> _Stream | None:
        """Runs one stream until everything is answered (None) or it ends early (the stream,
        its unanswered messages queued to be sent again)."""
        stream = _Stream(next(self._numbering.streams), _RequestQueue(self._ledger))
        stream.call = self._stub.ScoreStream(stream.requests)
        with self._cond:
            self._call = stream.call
            if self._cancelled:
                stream.call.cancel()
        threads = [
            threading.Thread(target=self._read, args=(stream,), name="producer-reader"),
            threading.Thread(target=self._watch, args=(stream,), name="producer-watchdog"),
        ]
        for thread in threads:
            thread.start()
        try:
            self._feed(stream)
        except BaseException:
            stream.call.cancel()
            raise
        finally:
            stream.requests.close()
            for thread in threads:
                thread.join()
        # The reader has stopped: no answer of this stream can still arrive.
        unanswered = self._ledger.end_stream(stream.number, stream.error)
        with self._cond:
            for message in reversed(unanswered):
                self._resends.appendleft(_again(message, 0.0, stream.error))
            done = self._batches is None and not self._resends
        return None if done else stream

    def _feed(self, stream: _Stream) -> None:
        while (send := self._next_send(stream)) is not None:
            if not self._take_slot(stream):
                with self._cond:
                    self._resends.appendleft(send)  # not sent: first in line on the next stream
                return
            message = self._ledger.queue(
                send.seq, send.ids, stream.number, send.attempt, payload=send.request
            )
            stream.requests.put(message)

    def _next_send(self, stream: _Stream) -> _Send | None:
        """What to send next: rows waiting to be sent again first, then new batches. None when
        the stream ended, or when everything was answered (then the stream is closed)."""
        while True:
            with self._cond:
                if stream.ended.is_set():
                    return None
                self._give_up_if_expired()
                send, wait = self._ready_resend()
                if send is not None:
                    return send
                if self._batches is None:
                    if self._resends or stream.in_flight:
                        self._cond.wait(min(wait, 0.5))
                        continue
                    break  # all answered
            batch = next(self._batches, None)  # outside the lock: reading and pacing may block
            if batch is None:
                self._batches = None
                continue
            seq = next(self._numbering.requests)
            return _Send(seq, batch.ids, to_request(str(seq), batch, self._options))
        stream.requests.close()
        if not stream.ended.wait(self._recovery.answer_timeout):
            stream.call.cancel()  # every answer is in; an engine that never ends the call
        return None

    def _ready_resend(self) -> tuple[_Send | None, float]:
        """(the first resend whose backoff is over, 0) or (None, seconds to wait for one)."""
        now = self._clock()
        wait = 0.5
        for i, send in enumerate(self._resends):
            if send.not_before <= now:
                del self._resends[i]
                return send, 0.0
            wait = min(wait, send.not_before - now)
        return None, wait

    def _give_up_if_expired(self) -> None:
        """Requests waiting out a backoff after a transient error answer fail once nothing was
        answered for max_retry_seconds. (Those a broken stream left are sent on the new stream:
        connecting again was the retry, and _recover checked the bound.)"""
        if not self._resends or not self._deadline.expired():
            return
        for send in self._resends:
            if send.not_before > 0:
                self._ledger.fail(send.ids, self._gave_up(send.reason or "no answer"))
        self._resends = deque(send for send in self._resends if send.not_before <= 0)

    def _take_slot(self, stream: _Stream) -> bool:
        with self._cond:
            while stream.in_flight >= self._max_in_flight and not stream.ended.is_set():
                self._cond.wait(0.5)
            if stream.ended.is_set():
                return False
            stream.in_flight += 1
            return True

    def _read(self, stream: _Stream) -> None:
        try:
            for response in stream.call:
                outcome = self._ledger.answer(from_response(response), stream.number)
                self._on_answer(stream, outcome)
        except grpc.RpcError as e:
            with self._cond:
                if stream.error is None:  # the watchdog's reason wins over its CANCELLED
                    stream.error, stream.code = describe_rpc_error(e), e.code()
        except Exception as e:  # a bug here must end the stream, not hang the feeder
            log.exception("failed to handle an answer; cancelling the stream")
            stream.error, stream.fatal = f"producer error: {e!r}", True
            stream.call.cancel()
        finally:
            with self._cond:
                stream.ended.set()
                self._cond.notify_all()

    def _on_answer(self, stream: _Stream, outcome: Outcome) -> None:
        with self._cond:
            message = outcome.message
            if message is not None:
                stream.in_flight -= 1
                if outcome.retry:
                    delay = self._recovery.backoff.delay(message.attempt)
                    log.info(
                        "request %s answered %s; sending it again in %.2f s",
                        message.request_id,
                        outcome.reason,
                        delay,
                    )
                    self._resends.append(_again(message, self._clock() + delay, outcome.reason))
                else:
                    self._deadline.progress()
                    self._breaks_in_a_row = 0
            self._cond.notify_all()
        if self._on_outcome is not None:
            self._on_outcome(outcome)

    def _watch(self, stream: _Stream) -> None:
        """Cancels the stream when its oldest request waits longer than the answer timeout: an
        engine that reports SERVING but never answers would otherwise hold the run forever."""
        timeout = self._recovery.answer_timeout
        while not stream.ended.wait(min(1.0, timeout / 4)):
            waited = self._ledger.oldest_wait(stream.number)
            if waited is None or waited <= timeout:
                continue
            with self._cond:
                if stream.error is None:
                    stream.code = grpc.StatusCode.DEADLINE_EXCEEDED
                    stream.error = (
                        f"DEADLINE_EXCEEDED: no answer within {timeout:g} s (--answer-timeout); "
                        "the engine accepted the stream but does not answer"
                    )
            log.warning("stream %d: %s; cancelling it", stream.number, stream.error)
            stream.call.cancel()
            return

    # -- between streams --------------------------------------------------------------------

    def _recover(self, stream: _Stream) -> bool:
        """After ``stream`` ended early: waits a backoff and for the engine to be SERVING
        again; False (with ``error`` set) when it is not worth it or no longer allowed."""
        broke_at = self._clock()
        error = stream.error or "the engine ended the stream with requests unanswered"
        self.stream_errors.append(error)
        if self._cancelled:
            self.interrupted = True
            self.error = "cancelled (Ctrl-C)"
            return False
        if stream.fatal or (stream.code is not None and stream.code not in RETRYABLE_STREAM_CODES):
            self.error = error
            return False
        if self._deadline.expired():
            self.error = self._gave_up(error)
            return False
        delay = self._recovery.backoff.delay(self._breaks_in_a_row)
        self._breaks_in_a_row += 1
        log.warning(
            "stream %d ended (%s); %d request(s) to send again; reconnecting in %.2f s",
            stream.number,
            error,
            len(self._resends),
            delay,
        )
        self._sleep(max(0.0, min(delay, self._deadline.remaining())))
        try:
            self._wait_ready(max(self._deadline.remaining(), 0.1))
        except EngineNotReady as e:
            self.error = self._gave_up(f"{error}; then {e}")
            return False
        if self._deadline.expired():
            self.error = self._gave_up(error)
            return False
        self.reconnects += 1
        self.reconnect_seconds.append(self._clock() - broke_at)
        log.info(
            "reconnected after %.2f s; sending %d unanswered request(s) again",
            self.reconnect_seconds[-1],
            len(self._resends),
        )
        return True

    def _gave_up(self, error: str) -> str:
        limit = self._recovery.max_retry_seconds
        return f"{error}; gave up after {limit:g} s without an answer (--max-retry-seconds)"


def _again(message: Message, not_before: float, reason: str | None) -> _Send:
    return _Send(message.seq, message.ids, message.payload, message.attempt + 1, not_before, reason)
