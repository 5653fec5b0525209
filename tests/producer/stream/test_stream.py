from collections import Counter

import numpy as np

from datasentinel.producer.app import run
from datasentinel.producer.stream.ledger import RowState


def test_every_id_is_sent_and_answered_exactly_once(engine, settings_for):
    result = run(settings_for(engine, count=1000, batch_size=64))  # 15 full messages + 40 rows
    assert sorted(engine.sent_ids) == list(range(1000))
    assert Counter(engine.sent_ids).most_common(1)[0][1] == 1
    assert [r.request_id for r in engine.requests] == [str(i) for i in range(16)]
    assert (result.ledger.state == RowState.OK).all()
    assert (result.answered, result.failed, result.n_violations, result.exit_code) == (
        1000,
        0,
        0,
        0,
    )


def test_an_error_answer_fails_exactly_that_messages_ids(start_engine, settings_for, capsys):
    engine = start_engine(fail_requests=frozenset({2}))
    result = run(settings_for(engine, count=200, batch_size=64, show="anomalies"))
    failed = np.flatnonzero(result.ledger.state == RowState.FAILED)
    assert failed.tolist() == list(range(128, 192))
    assert result.answered == 136 and result.exit_code == 1
    assert result.failures == [("INVALID_ARGUMENT: fake rejects request 2", 64)]
    assert "!! FAILED  ids 128..191 (64 rows): INVALID_ARGUMENT" in capsys.readouterr().out
    assert [r.request_id for r in engine.requests].count("2") == 1  # final: not sent again


def test_an_id_answered_twice_is_detected(start_engine, settings_for):
    engine = start_engine(duplicate_id_in=1)
    result = run(settings_for(engine))
    assert result.ledger.duplicate_ids == 1
    assert result.ledger.state[64] == RowState.FAILED  # the first row of request 1
    assert result.failed == 1 and result.exit_code == 1
    assert "request 1: id 64 answered more than once" in result.violations


def test_an_id_not_sent_is_detected(start_engine, settings_for):
    engine = start_engine(unknown_id_in=0)
    result = run(settings_for(engine))
    assert result.ledger.unexpected_ids == 1 and result.answered == 200
    assert result.exit_code == 1
    assert f"request 0: answer has id {engine.unknown_id}, not sent" in result.violations


def test_an_id_missing_from_its_answer_fails(start_engine, settings_for):
    engine = start_engine(drop_id_in=0)
    result = run(settings_for(engine))
    assert np.flatnonzero(result.ledger.state == RowState.FAILED).tolist() == [63]
    assert result.ledger.missing_ids == 1 and result.exit_code == 1


def test_a_stream_that_keeps_breaking_is_given_up_with_every_unanswered_id_failed(
    start_engine, settings_for
):
    engine = start_engine(break_after=0)  # every stream breaks before answering anything
    result = run(settings_for(engine, count=1000, batch_size=64, max_retry_seconds=1))
    assert result.answered == 0 and result.failed == 1000
    assert result.exit_code == 1
    assert result.reconnects >= 1  # it did try again before giving up
    reasons = dict(result.failures)
    assert sum(reasons.values()) == 1000
    assert all("UNAVAILABLE: fake engine going away" in reason for reason in reasons)
    assert all("gave up after 1 s without an answer (--max-retry-seconds)" in r for r in reasons)


def test_in_flight_window_is_never_exceeded(start_engine, settings_for):
    engine = start_engine(delay=0.01)  # slow engine: the producer must wait for answers
    result = run(settings_for(engine, count=400, batch_size=10, max_in_flight=3))
    assert result.exit_code == 0
    assert engine.max_unanswered == 3  # the window was filled, never exceeded


def test_latency_and_throughput_are_measured(engine, settings_for):
    result = run(settings_for(engine, count=300, batch_size=100))
    assert len(result.latencies_ms) == 3 and (result.latencies_ms > 0).all()
    assert result.vectors_per_s > 0 and result.messages_per_s > 0
