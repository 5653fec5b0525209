"""Unary calls that arrive while the model runs share its next call, each answered with its own
rows; a bad call fails alone."""

import asyncio
import threading

import numpy as np
import pytest

from datasentinel.engine.errors import InvalidInput
from datasentinel.engine.model.session import RuntimeOptions, load_model
from datasentinel.engine.scoring.core import Limits, ScoreBatch, ScoringCore


@pytest.fixture
async def held_core(tiny_model):
    """A core with the default inline limit whose model records each call's rows and, off the
    event loop, waits for ``gate`` (on the loop it cannot: nothing could open the gate)."""
    model = load_model(tiny_model.dir, RuntimeOptions(providers=("CPUExecutionProvider",)))
    core = ScoringCore(model, Limits(inline_rows=64))
    await core.start()
    run, core.sizes, core.gate, core.entered = model.run, [], threading.Event(), threading.Event()

    def held(vectors):
        core.sizes.append(len(vectors))
        core.entered.set()
        if threading.current_thread() is not threading.main_thread():
            core.gate.wait(5)
        return run(vectors)

    model.run = held
    yield core
    core.gate.set()
    await core.close()


def call(ident: int, dim: int = 4) -> ScoreBatch:
    return ScoreBatch([ident], np.full((1, dim), ident / 10, np.float32))


async def test_concurrent_unary_calls_share_one_model_call_each_with_its_own_answer(held_core):
    first = asyncio.create_task(held_core.score(call(1)))
    assert await asyncio.to_thread(held_core.entered.wait, 5)
    others = [asyncio.create_task(held_core.score(call(i))) for i in range(2, 6)]
    await asyncio.sleep(0.02)  # all four queued behind the running call
    held_core.gate.set()
    results = await asyncio.gather(first, *others)
    assert held_core.sizes == [1, 4]
    alone = {i: held_core.model.run(call(i).vectors).scores[0] for i in range(1, 6)}
    for ident, result in zip(range(1, 6), results, strict=True):
        assert list(result.ids) == [ident]
        assert result.scores[0] == pytest.approx(alone[ident], rel=1e-6)


async def test_a_bad_call_among_concurrent_ones_fails_alone(held_core):
    first = asyncio.create_task(held_core.score(call(1)))
    assert await asyncio.to_thread(held_core.entered.wait, 5)
    good = asyncio.create_task(held_core.score(call(2)))
    bad = asyncio.create_task(held_core.score(call(3, dim=5)))
    await asyncio.sleep(0.02)
    held_core.gate.set()
    results = await asyncio.gather(first, good, bad, return_exceptions=True)
    assert [list(r.ids) for r in results[:2]] == [[1], [2]]
    assert isinstance(results[2], InvalidInput)
