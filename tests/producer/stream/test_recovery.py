"""The producer survives its engine: a broken stream is resumed on a new one with exactly the
unanswered requests, transient error answers are retried, a hung engine is detected; all of it
bounded by --max-retry-seconds. Against the fake engine (tests/producer/conftest.py)."""

import io
import time
from collections import Counter

import numpy as np

from datasentinel.producer.app import run
from datasentinel.producer.cli import main
from datasentinel.producer.stream.ledger import RowState


def test_a_broken_stream_is_resumed_with_only_the_unanswered_requests(start_engine, settings_for):
    engine = start_engine(break_after=2, break_streams=1)  # the first stream breaks, then fine
    out = io.StringIO()
    result = run(settings_for(engine, count=1000, batch_size=64), out=out)
    assert (result.exit_code, result.answered, result.failed) == (0, 1000, 0)
    assert result.n_violations == 0
    assert result.reconnects == 1 and len(engine.streams) == 2
    # Requests 0 and 1 were answered on the first stream: never sent again; the second stream
    # starts with the oldest unanswered one and carries every request from there on.
    assert engine.streams[1][:1] == ["2"]
    assert set(engine.streams[1]) == {str(i) for i in range(2, 16)}
    answered = Counter(engine.answered_ids)
    assert sorted(answered) == list(range(1000)) and max(answered.values()) == 1
    assert result.ledger.resent_messages >= 1
    assert result.ledger.resent_messages + result.ledger.messages_sent >= 16
    assert result.vectors_sent == 1000  # first sends; resends are counted apart
    summary = out.getvalue()
    assert "reconnects   1 after 1 broken stream(s)" in summary
    assert f"resent {result.ledger.resent_messages} messages" in summary


def test_a_stream_breaking_repeatedly_with_progress_still_finishes(start_engine, settings_for):
    engine = start_engine(break_after=3)  # every stream answers 3 requests, then breaks
    result = run(settings_for(engine, count=640, batch_size=32, max_retry_seconds=5))
    assert (result.exit_code, result.answered) == (0, 640)
    assert result.reconnects >= 5
    assert sorted(Counter(engine.answered_ids).values()) == [1] * 640


def test_a_stream_error_that_would_repeat_ends_the_run_without_reconnecting(
    start_engine, settings_for
):
    engine = start_engine(break_after=1, break_code="UNAUTHENTICATED")
    result = run(settings_for(engine, count=1000, batch_size=64))
    assert result.exit_code == 1 and result.answered == 64 and result.reconnects == 0
    assert len(engine.streams) == 1
    assert all(
        reason.startswith("no answer (stream ended: UNAUTHENTICATED")
        or reason.startswith("not sent (stream ended: UNAUTHENTICATED")
        for reason, _ in result.failures
    )


def test_a_shed_request_is_sent_again_and_answered(start_engine, settings_for):
    engine = start_engine(shed=frozenset({"1"}))  # request 1: RESOURCE_EXHAUSTED once
    out = io.StringIO()
    result = run(settings_for(engine, count=200, batch_size=64), out=out)
    assert (result.exit_code, result.answered, result.failed) == (0, 200, 0)
    assert [r.request_id for r in engine.requests].count("1") == 2
    assert result.ledger.retried_answers == 1 and result.reconnects == 0
    assert "retried      1 transient error answers, resent" in out.getvalue()


def test_a_request_shed_every_time_fails_after_the_retry_bound(start_engine, settings_for):
    engine = start_engine(shed=frozenset({"0"}), shed_times=None)
    result = run(settings_for(engine, count=200, batch_size=64, max_retry_seconds=1))
    assert result.exit_code == 1 and result.answered == 136
    assert np.flatnonzero(result.ledger.state == RowState.FAILED).tolist() == list(range(64))
    assert result.failures == [
        (
            "RESOURCE_EXHAUSTED: fake engine overloaded; gave up after 1 s without an answer "
            "(--max-retry-seconds)",
            64,
        )
    ]
    assert [r.request_id for r in engine.requests].count("0") >= 3  # retried with backoff


def test_an_engine_that_never_answers_is_detected_and_reported(start_engine, settings_for):
    engine = start_engine(never_answer=True)
    started = time.monotonic()
    result = run(settings_for(engine, count=200, answer_timeout=0.5, max_retry_seconds=1))
    elapsed = time.monotonic() - started
    assert result.exit_code == 1 and result.answered == 0 and result.failed == 200
    assert len(engine.streams) >= 2  # the hung stream was cancelled and retried once at least
    assert elapsed < 10  # bounded: answer timeout + retry bound + a backoff, not forever
    (reason, count), *_ = result.failures
    assert "no answer within 0.5 s (--answer-timeout)" in reason
    assert "gave up after 1 s without an answer (--max-retry-seconds)" in reason
    assert np.count_nonzero(result.ledger.state == RowState.FAILED) == 200


def test_hung_engine_exits_1_from_the_command_line(start_engine, args_for, capsys):
    engine = start_engine(never_answer=True)
    flags = ["--answer-timeout", "0.5", "--max-retry-seconds", "1", "--show", "none"]
    assert main(args_for(engine, *flags)) == 1
    out = capsys.readouterr().out
    assert "failed       200" in out and "--answer-timeout" in out
