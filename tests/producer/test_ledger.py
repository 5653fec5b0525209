import numpy as np

from producer.ledger import Error, Ledger, Result, RowState


def ids(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.uint64)


def result(request_id: str, row_ids: np.ndarray) -> Result:
    n = len(row_ids)
    return Result(request_id, row_ids, np.ones(n, np.float32), np.zeros(n, bool), 0.5, "v1")


def test_answers_are_matched_to_requests_in_order_and_a_wrong_echo_is_noted():
    ledger = Ledger(4)
    for seq, row_ids in enumerate([ids(0, 1), ids(2, 3)]):
        ledger.mark_sent(ledger.queue(seq, row_ids))
    ledger.answer(result("0", ids(0, 1)))
    ledger.answer(result("7", ids(2, 3)))
    assert (ledger.state == RowState.OK).all()
    assert ledger.violations == [
        "request 1: answer echoes request_id '7' (answers must come in request order)"
    ]


def test_closing_fails_unanswered_and_unsent_rows_with_the_stream_error():
    ledger = Ledger(6)
    ledger.mark_sent(ledger.queue(0, ids(0, 1)))
    ledger.queue(1, ids(2, 3))  # queued, never taken by the stream
    ledger.close("UNAVAILABLE: gone")
    assert ledger.failures() == [
        ("no answer (stream ended: UNAVAILABLE: gone)", 2),
        ("not sent (stream ended: UNAVAILABLE: gone)", 4),
    ]


def test_engine_closing_the_stream_with_requests_unanswered_is_a_violation():
    ledger = Ledger(2)
    ledger.mark_sent(ledger.queue(0, ids(0, 1)))
    ledger.close(None)
    assert ledger.count(RowState.FAILED) == 2 and ledger.n_violations == 1


def test_an_answer_with_no_request_outstanding_is_a_violation():
    ledger = Ledger(2)
    ledger.answer(Error("0", "INVALID_ARGUMENT: x", ids(0)))
    assert ledger.n_violations == 1 and ledger.count(RowState.UNSENT) == 2
