"""The summary's throughput line: a rate only when the run lasted long enough to measure one."""

import pytest

from datasentinel.producer.app import RunResult
from datasentinel.producer.outputs.report import format_summary
from datasentinel.producer.stream.ledger import Ledger, RowState


def finished_run(rows: int, messages: int, seconds: float) -> RunResult:
    ledger = Ledger(rows)
    ledger.state[:] = RowState.OK
    ledger.messages_answered = messages
    ledger.first_sent_at, ledger.last_answer_at = 100.0, 100.0 + seconds
    return RunResult(
        target="127.0.0.1:1",
        source="synthetic",
        batch_size=64,
        model_version="m",
        threshold=1.0,
        labels=None,
        ledger=ledger,
        stream_error=None,
        interrupted=False,
    )


def throughput_line(result: RunResult) -> str:
    (line,) = [x for x in format_summary(result).splitlines() if x.startswith("throughput")]
    return line


@pytest.mark.parametrize("seconds", [0.03, 0.5, 0.99])
def test_a_short_run_reports_its_count_and_duration_not_a_rate(seconds):
    line = throughput_line(finished_run(2000, 32, seconds))
    assert f"2,000 vectors in {seconds:.3g} s" in line
    assert "/s" not in line and "too short for a rate" in line


def test_a_run_of_a_second_or_more_reports_its_rate_and_duration():
    line = throughput_line(finished_run(200_000, 3125, 4.0))
    assert "50,000 vectors/s, 781.2 messages/s (200,000 vectors in 4 s)" in line
