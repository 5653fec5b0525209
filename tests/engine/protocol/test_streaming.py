"""Streams: answers in request order, waiting requests scored as one group, one bad request
answered with its own error while the others are scored."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from datasentinel.engine.errors import InvalidInput, TooLarge
from datasentinel.engine.metrics.collectors import metrics
from datasentinel.engine.model.session import RuntimeOptions, load_model
from datasentinel.engine.protocol.streaming import answer_in_order, score_all
from datasentinel.engine.scoring.core import Limits, ScoreBatch, ScoringCore


@pytest.fixture
async def core(tiny_model):
    model = load_model(tiny_model.dir, RuntimeOptions(providers=("CPUExecutionProvider",)))
    calls: list[int] = []
    run = model.run

    def counting_run(vectors):
        calls.append(len(vectors))
        return run(vectors)

    model.run = counting_run
    core = ScoringCore(model, Limits(max_batch_rows=8, max_merge_rows=10))
    await core.start()
    calls.clear()
    core.model_calls = calls
    yield core
    await core.close()


def rows(n: int, seed: int, dim: int = 4) -> ScoreBatch:
    x = np.random.default_rng(seed).normal(scale=3, size=(n, dim)).astype(np.float32)
    return ScoreBatch(list(range(seed * 100, seed * 100 + n)), x)


async def test_score_each_scores_a_group_in_one_call_and_fails_bad_batches_alone(core, tiny_model):
    nan = rows(2, 3)
    nan.vectors[1, 0] = np.nan
    unreadable = InvalidInput("raw.data holds 3 bytes")
    group = [rows(3, 1), nan, unreadable, rows(9, 4), rows(1, 5)]

    outcomes = await core.score_each(group)

    assert isinstance(outcomes[1], InvalidInput) and "non-finite" in str(outcomes[1])
    assert outcomes[2] is unreadable
    assert isinstance(outcomes[3], TooLarge)
    for slot in (0, 4):
        scores, _ = tiny_model.expected(group[slot].vectors)
        np.testing.assert_allclose(outcomes[slot].scores, scores, rtol=1e-5, atol=1e-6)
        assert outcomes[slot].ids == group[slot].ids
    assert core.model_calls == [4]  # the two valid batches, merged


async def test_score_each_fails_each_non_finite_batch_alone_naming_its_own_id(core):
    inf, nan = rows(1, 2), rows(2, 3)
    inf.vectors[0, 1] = np.inf
    nan.vectors[1, 2] = np.nan
    group = [rows(1, 1), inf, rows(1, 4), nan, rows(1, 5)]

    outcomes = await core.score_each(group)

    assert isinstance(outcomes[1], InvalidInput) and "(id 200)" in str(outcomes[1])
    assert isinstance(outcomes[3], InvalidInput) and "(id 301)" in str(outcomes[3])
    assert [outcomes[slot].ids for slot in (0, 2, 4)] == [group[slot].ids for slot in (0, 2, 4)]
    assert core.model_calls == [3]


async def test_score_each_splits_groups_at_max_merge_rows_in_order(core, tiny_model):
    group = [rows(6, seed) for seed in range(1, 6)]  # 30 rows, at most 10 per call
    outcomes = await core.score_each(group)
    for batch, outcome in zip(group, outcomes, strict=True):
        scores, _ = tiny_model.expected(batch.vectors)
        np.testing.assert_allclose(outcome.scores, scores, rtol=1e-5, atol=1e-6)
    assert sum(core.model_calls) == 30 and max(core.model_calls) <= 10


def _requests_count(rpc: str, code: str) -> float:
    return metrics().requests.labels(rpc, code)._value.get()


def _latency_count(rpc: str) -> float:
    return sum(bucket.get() for bucket in metrics().latency.labels(rpc)._buckets)


async def test_a_group_counts_every_message_in_the_metrics_the_failed_one_by_its_code(core):
    inf = rows(1, 2)
    inf.vectors[0, 1] = np.inf
    group = [rows(1, 1), inf, rows(1, 3), rows(2, 4), rows(1, 5)]
    before = [_requests_count("GroupProbe", c) for c in ("OK", "INVALID_ARGUMENT")]
    latency_before = _latency_count("GroupProbe")

    answers = await score_all(
        core,
        "GroupProbe",
        group,
        lambda batch: (batch, None),
        lambda batch, _, result: ("ok", list(result.ids)),
        lambda batch, code, message: (code.name, message),
    )

    assert [a[0] for a in answers] == ["ok", "INVALID_ARGUMENT", "ok", "ok", "ok"]
    assert "Inf" in answers[1][1] and answers[3][1] == group[3].ids
    after = [_requests_count("GroupProbe", c) for c in ("OK", "INVALID_ARGUMENT")]
    assert [a - b for a, b in zip(after, before, strict=True)] == [4, 1]
    assert _latency_count("GroupProbe") - latency_before == 5


async def _feed(items, gate: asyncio.Event | None = None, fail_after: int | None = None):
    for i, item in enumerate(items):
        if fail_after is not None and i == fail_after:
            raise ConnectionResetError("client went away")
        if gate is not None and i == 1:
            await gate.wait()  # the rest arrive while the first is being answered
        yield item


def _slow_first_group(groups: list, gate: asyncio.Event):
    """An ``answer_all`` that records its groups and is busy on the first one: the feed
    (gated) sends the rest meanwhile, without suspending, so they all wait for the next group."""

    async def answer_all(group):
        groups.append(list(group))
        if len(groups) == 1:
            gate.set()
            await asyncio.sleep(0.05)
        return [f"answer {r}" for r in group]

    return answer_all


def _appending(answers: list):
    """A stream's ``write``: keeps what was sent."""

    async def write(answer) -> None:
        answers.append(answer)

    return write


async def test_requests_arriving_during_an_answer_form_the_next_group_in_order():
    groups, gate = [], asyncio.Event()
    answer_all = _slow_first_group(groups, gate)

    answers: list = []
    await answer_in_order(_feed(range(6), gate), answer_all, 16, _appending(answers))

    assert answers == [f"answer {r}" for r in range(6)]
    assert groups == [[0], [1, 2, 3, 4, 5]]


async def test_window_bounds_the_requests_waiting_beyond_the_group_in_progress():
    groups, gate = [], asyncio.Event()
    answer_all = _slow_first_group(groups, gate)

    answers: list = []
    await answer_in_order(_feed(range(12), gate), answer_all, 4, _appending(answers))

    assert answers == [f"answer {r}" for r in range(12)]
    assert max(len(g) for g in groups[1:]) <= 4


async def test_a_broken_read_still_sends_the_answers_owed_then_raises():
    sent = []

    async def answer_all(group):
        return list(group)

    with pytest.raises(ConnectionResetError):
        await answer_in_order(_feed(range(5), fail_after=3), answer_all, 8, _appending(sent))
    assert sent == [0, 1, 2]
