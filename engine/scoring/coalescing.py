"""Unary calls that arrive together share one model call, as a stream's waiting messages do.

Greedy, like the batcher: while groups of calls are being scored (their model calls on the
scoring thread, so the event loop keeps taking calls), the calls that arrive queue up, and when a
group is done they all go as the next group, in one pass: one model call per ``max_merge_rows``,
flags, severity and metrics once. Each call gets its own result back, or its own error. No timer:
a lone call goes at once, in its own task (no future, no runner task: nothing to share).

Two groups at once, not one: with one, the scoring thread waited while the loop answered the
previous group (2 workers, 1024-vector calls: 0.22x the echo floor against main's 0.29-0.33x, two
runs); with two, one group's model call runs while the other's answers are built.

Why not group the calls of one event-loop turn: grpc.aio starts unary handlers one per loop turn
(1 worker, 64 single-vector calls in flight: 1.03 calls per turn), so such groups stay single.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

GROUPS_AT_ONCE = 2

Batch = TypeVar("Batch")
Result = TypeVar("Result")


class Coalescer(Generic[Batch, Result]):
    """Scores ``score`` calls in groups with ``score_group``, which answers each batch of a group
    with its result or an Exception, in order; ``GROUPS_AT_ONCE`` groups at a time. Event-loop
    confined."""

    def __init__(
        self, score_group: Callable[[list[Batch]], Awaitable[Sequence[Result | Exception]]]
    ) -> None:
        self._score_group = score_group
        self._pending: list[tuple[Batch, asyncio.Future[Result]]] = []
        self._running = 0  # runners draining the queue (counted down as they end, not later)
        self._runners: set[asyncio.Task] = set()  # the loop keeps only weak references

    async def score(self, batch: Batch) -> Result:
        if not self._running:  # alone: nothing to share, so no future and no runner task
            return await self._alone(batch)
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((batch, future))
        if self._running < GROUPS_AT_ONCE:
            self._start_runner()
        return await future

    async def _alone(self, batch: Batch) -> Result:
        """A group of one, scored in the caller's own task (counted as a runner, so calls
        arriving meanwhile queue as they would behind any group)."""
        self._running += 1
        try:
            (outcome,) = await self._score_group([batch])
        finally:
            self._running -= 1
            if self._pending and self._running < GROUPS_AT_ONCE:  # arrived meanwhile
                self._start_runner()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _start_runner(self) -> None:
        self._running += 1
        runner = asyncio.get_running_loop().create_task(self._drain())
        self._runners.add(runner)
        runner.add_done_callback(self._runners.discard)

    async def _drain(self) -> None:
        """Scores what is pending, then what arrived meanwhile, until nothing is left."""
        try:
            while self._pending:
                group, self._pending = self._pending, []
                await self._answer(group)
        finally:  # no await between the last look at the queue and this
            self._running -= 1

    async def _answer(self, group: list[tuple[Batch, asyncio.Future[Result]]]) -> None:
        try:
            outcomes = await self._score_group([batch for batch, _ in group])
        except Exception as exc:  # the group failed as a whole: each caller is told
            outcomes = [exc] * len(group)
        for (_, future), outcome in zip(group, outcomes, strict=True):
            if future.done():  # the caller has gone (cancelled call)
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
