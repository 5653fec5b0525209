"""Admission control: how many vectors the scoring core holds at once (the transport limits that
keep one client from taking it all, message size and streams per connection, are gRPC options:
engine/protocol/options.py).

Unary calls over the row limit are refused at once (RESOURCE_EXHAUSTED): queueing them would only
turn overload into latency and memory. Stream messages wait for room instead (first come, first
served): the stream has already been admitted, and while it waits it reads nothing more, so HTTP/2
flow control slows its sender down without failing any of its vectors.
"""

from __future__ import annotations

import asyncio
from collections import deque

from datasentinel.engine.errors import Overloaded


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
