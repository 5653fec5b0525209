"""The greedy batcher merges what is queued, keeps rows in order, and bounds its queue."""

import asyncio
import threading

import numpy as np
import pytest

from datasentinel.engine.errors import Overloaded, Unavailable
from datasentinel.engine.model.session import ModelOutput
from datasentinel.engine.scoring.batcher import GreedyBatcher


class RecordingModel:
    """Scores a row as its first value; records the size of every call. Can be held to let a
    queue build up behind a running call."""

    def __init__(self):
        self.calls: list[int] = []
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()

    def __call__(self, vectors):
        self.entered.set()
        self.release.wait(5)
        self.calls.append(len(vectors))
        return ModelOutput(vectors[:, 0].copy(), vectors**2, 0.5, "v1")


async def running(model: RecordingModel) -> None:
    """Waits until the model is inside a call (held there while ``release`` is clear)."""
    assert await asyncio.to_thread(model.entered.wait, 5)


def rows(start, n):
    return np.arange(start, start + n, dtype=np.float32).repeat(2).reshape(n, 2)


async def started(model, max_rows=100, max_queue=100):
    batcher = GreedyBatcher(model, max_rows=max_rows, max_queue=max_queue)
    batcher.start()
    return batcher


async def test_each_caller_gets_its_own_rows_back():
    batcher = await started(RecordingModel())
    outs = await asyncio.gather(*(batcher.submit(rows(10 * i, 3)) for i in range(5)))
    await batcher.close()
    for i, out in enumerate(outs):
        np.testing.assert_array_equal(out.scores, [10 * i, 10 * i + 1, 10 * i + 2])
        assert out.feature_errors.shape == (3, 2)
        assert out.model_version == "v1"


async def test_requests_queued_behind_a_running_call_are_merged():
    model = RecordingModel()
    batcher = await started(model)
    model.release.clear()
    first = asyncio.ensure_future(batcher.submit(rows(0, 1)))
    await running(model)
    rest = [asyncio.ensure_future(batcher.submit(rows(i, 2))) for i in range(6)]
    await asyncio.sleep(0.01)
    model.release.set()
    await asyncio.gather(first, *rest)
    await batcher.close()
    assert model.calls == [1, 12]


async def test_merge_never_exceeds_max_rows_and_keeps_order():
    model = RecordingModel()
    batcher = await started(model, max_rows=5)
    model.release.clear()
    first = asyncio.ensure_future(batcher.submit(rows(0, 1)))
    await running(model)
    rest = [asyncio.ensure_future(batcher.submit(rows(100 + 10 * i, 2))) for i in range(5)]
    await asyncio.sleep(0.01)
    model.release.set()
    outs = await asyncio.gather(first, *rest)
    await batcher.close()
    assert all(n <= 5 for n in model.calls)
    assert sum(model.calls) == 11
    for i, out in enumerate(outs[1:]):
        np.testing.assert_array_equal(out.scores, [100 + 10 * i, 101 + 10 * i])


async def test_full_queue_answers_overloaded():
    model = RecordingModel()
    batcher = await started(model, max_queue=2)
    model.release.clear()
    held = asyncio.ensure_future(batcher.submit(rows(0, 1)))
    await running(model)
    queued = [asyncio.ensure_future(batcher.submit(rows(0, 1))) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(Overloaded, match="queue is full"):
        await batcher.submit(rows(0, 1))
    model.release.set()
    await asyncio.gather(held, *queued)
    await batcher.close()


async def test_close_finishes_queued_work_then_refuses_new():
    model = RecordingModel()
    batcher = await started(model)
    model.release.clear()
    pending = [asyncio.ensure_future(batcher.submit(rows(i, 1))) for i in range(4)]
    await asyncio.sleep(0.02)
    closing = asyncio.ensure_future(batcher.close())
    await asyncio.sleep(0.02)
    model.release.set()
    await closing
    assert [out.scores[0] for out in await asyncio.gather(*pending)] == [0, 1, 2, 3]
    with pytest.raises(Unavailable, match="shutting down"):
        await batcher.submit(rows(0, 1))


async def test_model_failure_reaches_every_caller_of_that_call_only():
    calls = []

    def flaky(vectors):
        calls.append(len(vectors))
        if len(calls) == 1:
            raise RuntimeError("boom")
        return ModelOutput(vectors[:, 0].copy(), vectors, 0.5, "v1")

    batcher = await started(flaky)
    with pytest.raises(RuntimeError, match="boom"):
        await batcher.submit(rows(0, 2))
    out = await batcher.submit(rows(5, 1))
    await batcher.close()
    assert out.scores[0] == 5


async def test_small_calls_run_inline_and_large_ones_on_the_scoring_thread():
    threads = []

    def model(vectors):
        threads.append((len(vectors), threading.current_thread().name))
        return ModelOutput(vectors[:, 0].copy(), vectors, 0.5, "v1")

    batcher = GreedyBatcher(model, max_rows=100, max_queue=10, inline_rows=4)
    batcher.start()
    await batcher.submit(rows(0, 4))
    await batcher.submit(rows(0, 5))
    await batcher.close()
    assert threads[0] == (4, threading.main_thread().name)
    assert threads[1][0] == 5 and threads[1][1].startswith("scoring")


async def test_idle_batcher_runs_small_requests_at_once_but_never_ahead_of_the_queue():
    model = RecordingModel()
    batcher = GreedyBatcher(model, max_rows=100, max_queue=10, inline_rows=4)
    batcher.start()
    model.release.clear()
    big = asyncio.ensure_future(batcher.submit(rows(0, 10)))  # too big to run inline: queued
    await running(model)  # on the scoring thread, held
    small = asyncio.ensure_future(batcher.submit(rows(100, 1)))  # busy: must wait its turn
    await asyncio.sleep(0.02)
    assert not small.done()
    model.release.set()
    await asyncio.gather(big, small)
    assert model.calls == [10, 1]
    out = await batcher.submit(rows(7, 2))  # idle again: answered directly
    assert model.calls == [10, 1, 2] and list(out.scores) == [7, 8]
    await batcher.close()


async def test_calls_queued_behind_one_run_straight_from_submit_still_merge_in_order():
    model = RecordingModel()
    batcher = await started(model)
    model.release.clear()
    alone = asyncio.ensure_future(batcher.submit(rows(0, 3), inline=False))  # idle: run at once
    await running(model)
    later = []
    for i in (1, 2):  # the worker wakes for the first of them before the second arrives
        later.append(asyncio.ensure_future(batcher.submit(rows(10 * i, 2), inline=False)))
        await asyncio.sleep(0.02)
    model.release.set()
    outs = await asyncio.gather(alone, *later)
    assert model.calls == [3, 4]  # the two that waited went together, after the first
    assert [list(out.scores) for out in outs] == [[0, 1, 2], [10, 11], [20, 21]]
    await batcher.close()


async def until(condition, seconds: float = 2.0) -> None:
    for _ in range(int(seconds / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not met in time")


class GatedModel:
    """Holds each call on its own gate until released; records each call's rows and thread."""

    def __init__(self, calls: int) -> None:
        self.gates = [threading.Event() for _ in range(calls)]
        self.calls: list[int] = []
        self.threads: list[str] = []

    def __call__(self, vectors):
        gate = self.gates[len(self.calls)]
        self.calls.append(len(vectors))
        self.threads.append(threading.current_thread().name)
        gate.wait(5)
        return ModelOutput(vectors[:, 0].copy(), vectors, 0.5, "v1")

    def release_all(self) -> None:
        for gate in self.gates:
            gate.set()


async def test_the_next_call_is_handed_to_the_thread_while_one_runs():
    # One call at a time kept the next one in the queue until the running call's results were
    # delivered on the event loop, and the thread sat idle meanwhile.
    model = GatedModel(3)
    gates, calls = model.gates, model.calls
    handed: list[int] = []
    batcher = GreedyBatcher(
        model,
        max_rows=2,
        max_queue=10,
        pipeline_rows=2,
        on_batch=lambda rows, queued: handed.append(rows),
    )
    batcher.start()
    alone = asyncio.ensure_future(batcher.submit(rows(0, 2), inline=False))  # idle: at once
    await until(lambda: len(calls) == 1)
    queued = [asyncio.ensure_future(batcher.submit(rows(10 * i, 2), inline=False)) for i in (1, 2)]
    await asyncio.sleep(0.01)
    gates[0].set()  # the first call ends, the second starts on the thread and is held there
    await until(lambda: len(calls) == 2)
    await until(lambda: len(handed) == 3)  # the third is handed over while the second runs
    assert calls == [2, 2] and not queued[0].done()
    model.release_all()
    outs = await asyncio.gather(alone, *queued)
    assert [list(out.scores) for out in outs] == [[0, 1], [10, 11], [20, 21]]
    assert calls == [2, 2, 2]
    await batcher.close()


async def test_a_small_call_never_runs_inline_beside_a_call_on_the_thread():
    model = GatedModel(3)
    gates, calls = model.gates, model.calls
    batcher = GreedyBatcher(model, max_rows=10, max_queue=10, inline_rows=4, pipeline_rows=1)
    batcher.start()
    alone = asyncio.ensure_future(batcher.submit(rows(0, 10)))  # idle, too big for inline
    await until(lambda: len(calls) == 1)
    big = asyncio.ensure_future(batcher.submit(rows(100, 10)))  # queued
    small = asyncio.ensure_future(batcher.submit(rows(200, 1)))  # small enough to run inline
    await asyncio.sleep(0.01)
    gates[0].set()  # the big queued call starts on the thread and is held there
    await until(lambda: len(calls) == 2)
    await asyncio.sleep(0.02)
    assert not small.done()  # it waits for the thread rather than running on the loop beside it
    model.release_all()
    await asyncio.gather(alone, big, small)
    assert calls == [10, 10, 1]
    assert model.threads[2].startswith("scoring")
    await batcher.close()


async def test_small_requests_wait_for_the_thread_and_go_together():
    # Handed over early, each small request behind a running call would have been its own call.
    model = GatedModel(4)
    gates, calls = model.gates, model.calls
    batcher = GreedyBatcher(model, max_rows=100, max_queue=10, pipeline_rows=4)
    batcher.start()
    alone = asyncio.ensure_future(batcher.submit(rows(0, 2), inline=False))  # idle: at once
    await until(lambda: len(calls) == 1)
    held = asyncio.ensure_future(batcher.submit(rows(10, 3), inline=False))
    await asyncio.sleep(0.01)
    gates[0].set()  # the worker's call starts on the thread and is held there
    await until(lambda: len(calls) == 2)
    small = []
    for i in range(3):  # one at a time, the worker free to take each as it comes
        small.append(asyncio.ensure_future(batcher.submit(rows(100 + i, 1), inline=False)))
        await asyncio.sleep(0.01)
    model.release_all()
    outs = await asyncio.gather(alone, held, *small)
    assert calls == [2, 3, 3]
    assert [list(out.scores) for out in outs] == [[0, 1], [10, 11, 12], [100], [101], [102]]
    await batcher.close()
