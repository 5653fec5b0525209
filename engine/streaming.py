"""Bidirectional streams answered in request order, with requests scored concurrently.

Both our ScoreStream and the Open Inference Protocol's ModelStreamInfer use it: up to ``window``
requests of one stream are in flight at once (so they can share model calls in the batcher),
and the answers go out strictly in request order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

Request = TypeVar("Request")
Answer = TypeVar("Answer")


async def answer_in_order(
    requests: AsyncIterator[Request],
    answer: Callable[[Request], Awaitable[Answer]],
    window: int,
) -> AsyncIterator[Answer]:
    """Yields ``answer(request)`` for every request, in order. ``answer`` must not raise for a
    bad request (it answers with an error instead): one request never ends the stream."""
    pending: asyncio.Queue[asyncio.Task[Answer] | None] = asyncio.Queue(window)
    reader = asyncio.create_task(_read(requests, answer, pending))
    try:
        while (task := await pending.get()) is not None:
            yield await task
        await reader  # re-raises a failed read (e.g. the client cancelled)
    finally:
        reader.cancel()
        while not pending.empty():
            if (task := pending.get_nowait()) is not None:
                task.cancel()


async def _read(requests, answer, pending: asyncio.Queue) -> None:
    failure: Exception | None = None
    try:
        async for request in requests:
            await pending.put(asyncio.create_task(answer(request)))
    except Exception as exc:  # a broken read still lets the answers already owed go out
        failure = exc
    await pending.put(None)
    if failure is not None:
        raise failure
