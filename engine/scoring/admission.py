"""Admission control: how many vectors the scoring core holds at once, and the transport limits
(message size, concurrent RPCs, streams per connection) that keep one client from taking it all.

Unary calls over the row limit are refused at once (RESOURCE_EXHAUSTED): queueing them would only
turn overload into latency and memory. Stream messages wait for room instead (first come, first
served): the stream has already been admitted, and while it waits it reads nothing more, so HTTP/2
flow control slows its sender down without failing any of its vectors.
"""

from __future__ import annotations

import asyncio
from collections import deque

from datasentinel.engine.errors import Overloaded

# The transport accepts messages somewhat above the app's limit so that the engine, not gRPC,
# answers a message between the two: as one failed request (RESOURCE_EXHAUSTED), while a stream
# goes on. A message above the transport limit ends its whole call (gRPC's own RESOURCE_EXHAUSTED).
TRANSPORT_MARGIN = 0.25
MIN_TRANSPORT_MARGIN_BYTES = 1 << 20


def transport_receive_limit(app_limit_bytes: int) -> int:
    margin = max(MIN_TRANSPORT_MARGIN_BYTES, int(app_limit_bytes * TRANSPORT_MARGIN))
    return app_limit_bytes + margin


def server_options(
    max_message_bytes: int, max_streams_per_connection: int
) -> list[tuple[str, int]]:
    """gRPC server channel arguments for the limits above."""
    return [
        ("grpc.max_receive_message_length", transport_receive_limit(max_message_bytes)),
        ("grpc.max_send_message_length", max_message_bytes),
        # HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: a client opening more waits for a free one.
        ("grpc.max_concurrent_streams", max_streams_per_connection),
    ]


class RowAdmission:
    """Counts the vectors queued or being scored; refuses (``admit``) or delays (``acquire``) a
    batch that would take the count over ``max_rows``. Event-loop confined: no locks needed."""

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self.rows = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    def admit(self, rows: int) -> None:
        """Takes ``rows`` now or raises Overloaded. Waiting streams go first: a steady flow of
        unary calls must not starve them."""
        if self._waiting or not self._fits(rows):
            raise Overloaded(
                f"engine is at capacity ({self.rows} vectors queued or being scored, limit "
                f"{self.max_rows}); retry with backoff, or spread the load over more instances"
            )
        self.rows += rows

    async def acquire(self, rows: int) -> None:
        """Takes ``rows`` as soon as they fit, in arrival order."""
        if not self._waiting and self._fits(rows):
            self.rows += rows
            return
        waiter = asyncio.get_running_loop().create_future()
        entry = (rows, waiter)
        self._waiting.append(entry)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release(rows)  # granted just as the waiter was cancelled: give it back
            else:
                self._waiting.remove(entry)
                self._wake()
            raise

    def release(self, rows: int) -> None:
        self.rows -= rows
        self._wake()

    def _fits(self, rows: int) -> bool:
        # One batch alone always fits, so a batch larger than the limit cannot wait forever.
        return self.rows == 0 or self.rows + rows <= self.max_rows

    def _wake(self) -> None:
        while self._waiting and self._fits(self._waiting[0][0]):
            rows, waiter = self._waiting.popleft()
            self.rows += rows
            waiter.set_result(None)
