"""Greedy batching: concurrent requests are merged into one model call.

Whenever the worker is free it takes everything already queued (up to ``max_rows``) and runs it at
once. There is no timer: waiting 1-2 ms for company cost 6x throughput at light load here, while
under heavy load the queue fills by itself while the previous call runs.

The worker hands the scoring thread up to ``CALLS_IN_FLIGHT`` merged calls when requests are large
(``PIPELINE_ROWS``): the next one waits in the thread's queue while the current one runs, so the
thread does not sit idle while the event loop takes a finished call's results apart and answers
its requests. Smaller requests wait for the thread and go together. The thread still runs one
call at a time (and a small call that could run inline goes to the thread when another call is in
flight, so two never overlap).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from datasentinel.engine.errors import Overloaded, Unavailable
from datasentinel.engine.model.session import ModelOutput

log = logging.getLogger(__name__)

# Merged calls handed to the scoring thread at once. With one, the thread was idle 18% of the
# time on 1024-vector streams (1 worker: 244 us per message between calls of ~7,700 rows, while
# the loop delivered results); with two, 1024-vector streams 0.83-0.86M -> 0.93-0.96M vectors/s
# and 1024-vector unary calls 0.72-0.76M -> 0.86-0.97M (3 rounds in turns, quiet machine). On a
# busier machine (serving.py --baseline, 3 runs): 1024-vector streams +3-17%, the rest within noise.
CALLS_IN_FLIGHT = 2
# ... but only for requests of this many rows or more. Handing over a call of a few vectors early
# takes it out of the merge with those that arrive while the thread runs: unary single-vector
# calls fell 7-10% (64 in flight; 3 runs in turns) when every call went over early.
PIPELINE_ROWS = 512


@dataclass
class _Job:
    vectors: np.ndarray
    future: asyncio.Future[ModelOutput]
    inline: bool = True  # may run on the event loop (see submit)


class GreedyBatcher:
    """Runs ``run(vectors) -> ModelOutput`` on merged requests, one call at a time, off the event
    loop (ONNX Runtime releases the GIL, so gRPC keeps parsing the next requests meanwhile)."""

    def __init__(
        self,
        run: Callable[[np.ndarray], ModelOutput],
        *,
        max_rows: int,
        max_queue: int,
        inline_rows: int = 0,
        pipeline_rows: int = PIPELINE_ROWS,
        on_batch: Callable[[int, int], None] = lambda rows, queued: None,
    ) -> None:
        self._on_batch = on_batch
        self._run = run
        self._max_rows = max_rows
        self._inline_rows = inline_rows
        self._pipeline_rows = pipeline_rows
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue(max_queue)
        self._carry: _Job | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="scoring")
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        # Model calls taken on and not finished: the worker's, and one run straight from submit.
        self._busy = 0
        self._thread_free = asyncio.Event()  # no call straight from submit holds the thread
        self._thread_free.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._work(), name="batcher")

    async def submit(self, vectors: np.ndarray, inline: bool = True) -> ModelOutput:
        """Queues ``vectors`` and waits for their results (rows in the same order); on an idle
        batcher, runs them at once (small ones inline, the rest on the scoring thread).
        ``inline=False``: never on the event loop, always on the scoring thread. For unary calls:
        grpc.aio starts their handlers one per loop turn (1 worker, 64 single-vector calls in
        flight: 1.03 calls per loop turn), so a call run inline is over before the next one
        starts and none ever shares a model call; while the thread runs one, the calls that
        arrive meanwhile queue and go together."""
        if self._closing:
            raise Unavailable("engine is shutting down; retry on another instance")
        if not self._busy and self._queue.empty():
            # Nothing to merge with and nothing ahead of us: run now, skipping the hand-off to
            # the worker task and back (two event-loop switches per request).
            if inline and len(vectors) <= self._inline_rows:
                self._on_batch(len(vectors), 0)
                return self._run(vectors)
            return await self._run_alone(vectors)
        job = _Job(vectors, asyncio.get_running_loop().create_future(), inline)
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            raise Overloaded(
                f"engine queue is full ({self._queue.maxsize} requests waiting); "
                "retry with backoff or send more vectors per request"
            ) from None
        return await job.future

    async def _run_alone(self, vectors: np.ndarray) -> ModelOutput:
        """One call on the scoring thread, awaited by its caller: no job, no future and no
        worker wake-up. Calls arriving meanwhile queue; the worker waits for this one before
        taking them, so they still go together."""
        self._busy += 1
        self._thread_free.clear()
        self._on_batch(len(vectors), 0)
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, self._run, vectors
            )
        except Exception:
            log.exception("model run failed on a batch of %d rows", len(vectors))
            raise
        finally:
            self._busy -= 1
            self._thread_free.set()

    async def close(self) -> None:
        """Finishes every queued job, then stops the worker."""
        self._closing = True
        if self._task is not None:
            await self._queue.put(None)
            await self._task
        self._executor.shutdown(wait=True)

    async def _work(self) -> None:
        calls: set[asyncio.Task[None]] = set()
        try:
            while (first := self._carry or await self._queue.get()) is not None:
                self._carry = None
                self._busy += 1
                if calls and len(first.vectors) < self._pipeline_rows:
                    # Small requests gain more from merging with those arriving meanwhile.
                    await asyncio.wait(set(calls))
                await self._thread_free.wait()  # behind a call run straight from submit
                call = asyncio.get_running_loop().create_task(
                    self._run_jobs(self._more_jobs(first)), name="model call"
                )
                calls.add(call)
                call.add_done_callback(functools.partial(self._call_done, calls))
                if len(calls) >= CALLS_IN_FLIGHT:
                    await asyncio.wait(set(calls), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if calls:
                await asyncio.wait(set(calls))

    def _call_done(self, calls: set[asyncio.Task[None]], call: asyncio.Task[None]) -> None:
        calls.discard(call)
        self._busy -= 1
        if not call.cancelled() and call.exception() is not None:  # a bug: _run_jobs answers errors
            log.error("model call failed", exc_info=call.exception())

    def _more_jobs(self, first: _Job) -> list[_Job]:
        """``first``, and greedily whatever else is queued, up to ``max_rows``."""
        jobs, rows = [first], len(first.vectors)
        while rows < self._max_rows and not self._queue.empty():
            job = self._queue.get_nowait()
            if job is None:  # close() was called: finish these, then stop.
                self._queue.put_nowait(None)
                break
            if rows + len(job.vectors) > self._max_rows:
                self._carry = job
                break
            jobs.append(job)
            rows += len(job.vectors)
        return jobs

    async def _run_jobs(self, jobs: list[_Job]) -> None:
        merged = jobs[0].vectors if len(jobs) == 1 else np.concatenate([j.vectors for j in jobs])
        self._on_batch(len(merged), self._queue.qsize())
        loop = asyncio.get_running_loop()
        try:
            alone = self._busy == 1  # no other call on the thread that this one could overlap
            if alone and len(merged) <= self._inline_rows and all(job.inline for job in jobs):
                # Small calls take a few microseconds: cheaper than the thread hop and wake-up.
                out = self._run(merged)
            else:
                out = await loop.run_in_executor(self._executor, self._run, merged)
        except Exception as exc:
            log.exception("model run failed on a batch of %d rows", len(merged))
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        if len(jobs) == 1:  # the whole output is the job's: no slicing (~14 us per job)
            if not jobs[0].future.done():
                jobs[0].future.set_result(out)
            return
        start = 0
        for job in jobs:
            stop = start + len(job.vectors)
            if not job.future.done():  # the caller may have gone (cancelled RPC)
                job.future.set_result(out.rows(start, stop))
            start = stop
