"""The coalescer scores calls that arrive while a group is being scored as the next group, each
answered with its own outcome."""

import asyncio

import pytest

from datasentinel.engine.scoring.coalescing import Coalescer


class Groups:
    """Answers each batch with its double (an Exception stays as it is); records every group and
    holds it until ``gate`` opens."""

    def __init__(self) -> None:
        self.groups: list[list] = []
        self.gate = asyncio.Event()

    async def __call__(self, batches: list) -> list:
        self.groups.append(batches)
        await self.gate.wait()
        return [b if isinstance(b, Exception) else 2 * b for b in batches]


async def test_calls_arriving_while_a_group_runs_go_together_next():
    groups = Groups()
    together = Coalescer(groups)
    first = asyncio.create_task(together.score(1))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(together.score(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0.01)
    groups.gate.set()
    assert await asyncio.gather(first, *rest) == [2, 4, 6, 8]
    assert groups.groups == [[1], [2, 3, 4]]


async def test_an_error_reaches_its_own_caller_only():
    groups = Groups()
    groups.gate.set()
    together = Coalescer(groups)
    calls = [together.score(1), together.score(ValueError("bad")), together.score(3)]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert outcomes[0] == 2 and outcomes[2] == 6
    assert isinstance(outcomes[1], ValueError)


async def test_a_group_that_fails_as_a_whole_fails_each_of_its_calls():
    async def broken(batches):
        raise RuntimeError("model gone")

    together = Coalescer(broken)
    outcomes = await asyncio.gather(together.score(1), together.score(2), return_exceptions=True)
    assert [type(o) for o in outcomes] == [RuntimeError, RuntimeError]


async def test_a_cancelled_call_leaves_the_others_answered():
    groups = Groups()
    together = Coalescer(groups)
    gone = asyncio.create_task(together.score(1))
    kept = asyncio.create_task(together.score(2))
    await asyncio.sleep(0)
    gone.cancel()
    groups.gate.set()
    assert await kept == 4
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert await together.score(5) == 10  # and the next call starts a new group


async def test_a_second_group_goes_while_the_first_is_held_and_the_rest_wait_for_either():
    groups = Groups()
    together = Coalescer(groups)
    calls = [asyncio.create_task(together.score(1))]
    await asyncio.sleep(0)
    calls.append(asyncio.create_task(together.score(2)))
    await asyncio.sleep(0)
    calls += [asyncio.create_task(together.score(n)) for n in (3, 4)]
    await asyncio.sleep(0.01)
    assert groups.groups == [[1], [2]]
    groups.gate.set()
    assert await asyncio.gather(*calls) == [2, 4, 6, 8]
    assert groups.groups == [[1], [2], [3, 4]]


async def test_a_call_alone_is_scored_in_its_own_task_and_later_arrivals_still_go_together():
    tasks, gate = [], asyncio.Event()

    async def record(batches):
        tasks.append((asyncio.current_task(), batches))
        await gate.wait()
        return [2 * b for b in batches]

    together = Coalescer(record)
    alone = asyncio.create_task(together.score(1))
    await asyncio.sleep(0)
    later = [asyncio.create_task(together.score(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0.01)
    gate.set()
    assert await asyncio.gather(alone, *later) == [2, 4, 6, 8]
    assert tasks[0] == (alone, [1])  # no runner task, no future for a call with no company
    assert [batches for _, batches in tasks[1:]] == [[2, 3, 4]]
