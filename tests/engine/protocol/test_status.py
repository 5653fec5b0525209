"""A call the client cancels (or lets its deadline pass) shows in the requests metric as
CANCELLED, unary and stream alike: under overload these are the calls that waited too long.
Refusals for the engine's sake (shed, too large) and cancellations show in the refusals metric
too, by reason; a fault in the request does not."""

from __future__ import annotations

import asyncio

import pytest

from datasentinel.engine import errors
from datasentinel.engine.metrics.collectors import metrics
from datasentinel.engine.metrics.refusals import refusals
from datasentinel.engine.protocol.status import outcome
from datasentinel.engine.protocol.streaming import answer_in_order


def cancelled_count(rpc: str) -> float:
    return metrics().requests.labels(rpc, "CANCELLED")._value.get()


def refused_count(code: str, reason: str) -> float:
    return refusals().counter.labels(code, reason)._value.get()


@pytest.mark.parametrize(
    "error, code, reason",
    [
        (errors.Overloaded("full"), "RESOURCE_EXHAUSTED", "shed"),
        (errors.TooLarge("big"), "RESOURCE_EXHAUSTED", "too_large"),
        (errors.InvalidInput("bad"), "INVALID_ARGUMENT", None),
    ],
)
async def test_refusals_for_the_engines_sake_are_counted_by_reason(error, code, reason):
    async def fail():
        raise error

    reasons = ["shed", "too_large", "cancelled"]
    before = {r: refused_count(code, r) for r in reasons}
    _, got, message = await outcome("RefusalProbe", fail())
    assert (got.name, message) == (code, str(error))
    grew = [r for r in reasons if refused_count(code, r) > before[r]]
    assert grew == ([reason] if reason else [])


async def test_a_cancelled_unary_call_is_counted():
    before = cancelled_count("UnaryProbe")
    call = asyncio.create_task(outcome("UnaryProbe", asyncio.Event().wait()))
    await asyncio.sleep(0)
    call.cancel()
    refused_before = refused_count("CANCELLED", "cancelled")
    with pytest.raises(asyncio.CancelledError):
        await call
    assert cancelled_count("UnaryProbe") - before == 1
    assert refused_count("CANCELLED", "cancelled") - refused_before == 1


async def test_a_cancelled_stream_is_counted():
    before = cancelled_count("StreamProbe")

    async def requests():
        yield 1
        await asyncio.Event().wait()  # the client sends nothing more and then goes away

    async def answer_all(group):
        return [f"answer {r}" for r in group]

    answers: list[str] = []

    async def write(answer):
        answers.append(answer)

    async def serve():
        await answer_in_order(requests(), answer_all, 4, write, rpc="StreamProbe")

    stream = asyncio.create_task(serve())
    for _ in range(5):
        await asyncio.sleep(0)
    stream.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stream
    assert answers == ["answer 1"]
    assert cancelled_count("StreamProbe") - before == 1


async def test_a_stream_stops_reading_past_its_buffer_until_answers_go_out():
    """Read-ahead is bounded in bytes: a fast sender is held back (flow control), not buffered."""
    pulled: list[int] = []
    gate = asyncio.Event()

    async def requests():
        for i in range(20):
            pulled.append(i)
            yield i

    async def answer_all(group):
        await gate.wait()
        return group

    answers: list[int] = []

    async def write(answer):
        answers.append(answer)

    async def serve():
        await answer_in_order(
            requests(), answer_all, 64, write, weigh=lambda r: 100, buffer_bytes=250
        )

    task = asyncio.create_task(serve())
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(pulled) <= 3  # two held (200 of 250 bytes), the third waits for room
    gate.set()
    await task
    assert answers == list(range(20))
