"""Admission control: unary batches over the row limit are refused at once, stream batches wait
their turn in order, and nothing leaks when a waiter is cancelled."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from datasentinel.engine.errors import Overloaded
from datasentinel.engine.model.session import RuntimeOptions, load_model
from datasentinel.engine.scoring.admission import RowAdmission
from datasentinel.engine.scoring.core import Limits, ScoreBatch, ScoringCore


async def test_admit_refuses_past_the_limit_and_admits_after_release():
    admission = RowAdmission(10)
    admission.admit(6)
    with pytest.raises(Overloaded, match="at capacity"):
        admission.admit(5)
    admission.admit(4)
    admission.release(6)
    admission.admit(5)
    assert admission.rows == 9


async def test_one_batch_alone_always_fits_even_above_the_limit():
    admission = RowAdmission(10)
    admission.admit(50)
    assert admission.rows == 50


async def test_acquire_waits_in_order_and_unary_calls_do_not_jump_the_queue():
    admission = RowAdmission(10)
    admission.admit(8)
    order: list[str] = []

    async def stream(name: str, rows: int) -> None:
        await admission.acquire(rows)
        order.append(name)

    first = asyncio.create_task(stream("first", 5))
    second = asyncio.create_task(stream("second", 2))
    await asyncio.sleep(0)
    assert order == []  # the first does not fit; the second must not overtake it
    with pytest.raises(Overloaded):
        admission.admit(1)  # streams are waiting: a unary call is refused
    admission.release(8)
    await asyncio.gather(first, second)
    assert order == ["first", "second"] and admission.rows == 7


async def test_a_cancelled_waiter_gives_its_place_back():
    admission = RowAdmission(10)
    admission.admit(10)
    waiter = asyncio.create_task(admission.acquire(5))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    admission.release(10)
    assert admission.rows == 0
    admission.admit(10)


@pytest.fixture
async def gated_core(tiny_model):
    """A scoring core whose model runs only when the test opens the gate."""
    model = load_model(tiny_model.dir, RuntimeOptions(providers=("CPUExecutionProvider",)))
    run, gate, submitted = model.run, asyncio.Event(), []
    core = ScoringCore(
        model, Limits(max_batch_rows=8, max_merge_rows=8, inline_rows=0, max_inflight_rows=8)
    )
    await core.start()

    async def slow(vectors, inline=True):
        submitted.append(len(vectors))
        await gate.wait()
        return run(vectors)

    core._batcher.submit = slow
    core.gate, core.submitted = gate, submitted
    yield core
    gate.set()
    await core.close()


def batch(rows: int, start: int = 0) -> ScoreBatch:
    return ScoreBatch(list(range(start, start + rows)), np.zeros((rows, 4), dtype=np.float32))


async def test_core_refuses_unary_calls_past_the_row_limit_at_once(gated_core):
    held = asyncio.create_task(gated_core.score(batch(6)))
    await asyncio.sleep(0)
    refused = asyncio.create_task(gated_core.score(batch(3)))  # 6 + 3 > 8 while 6 in flight
    await asyncio.sleep(0)
    assert refused.done(), "not refused at once: it was queued"
    with pytest.raises(Overloaded):
        refused.result()
    small = asyncio.create_task(gated_core.score(batch(2)))
    await asyncio.sleep(0)
    gated_core.gate.set()
    assert len((await held).scores) == 6 and len((await small).scores) == 2
    assert len((await gated_core.score(batch(8))).scores) == 8  # room again afterwards


async def test_core_makes_stream_batches_wait_instead_of_failing(gated_core):
    held = asyncio.create_task(gated_core.score(batch(6)))
    await asyncio.sleep(0)
    group = asyncio.create_task(gated_core.score_each([batch(4, 100), batch(4, 200)]))
    for _ in range(5):
        await asyncio.sleep(0)
    assert gated_core.submitted == [6]  # the group waits for room, it is neither queued nor failed
    gated_core.gate.set()
    await held
    outcomes = await group
    assert [list(o.ids) for o in outcomes] == [list(range(100, 104)), list(range(200, 204))]
    assert gated_core.submitted == [6, 8]
