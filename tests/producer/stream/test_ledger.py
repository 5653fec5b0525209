import numpy as np

from datasentinel.producer.stream.ledger import Error, Explanations, Ledger, Result, RowState


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


def test_answers_are_matched_within_their_own_stream():
    ledger = Ledger(4)
    ledger.mark_sent(ledger.queue(0, ids(0, 1), stream=1))
    ledger.mark_sent(ledger.queue(1, ids(2, 3), stream=2))
    ledger.answer(result("1", ids(2, 3)), stream=2)  # stream 2's oldest, not stream 1's
    assert ledger.state.tolist() == [RowState.PENDING] * 2 + [RowState.OK] * 2
    assert ledger.n_violations == 0


def test_a_broken_stream_hands_back_only_its_unanswered_messages_for_a_resend():
    ledger = Ledger(6)
    for seq in range(3):
        ledger.mark_sent(ledger.queue(seq, ids(2 * seq, 2 * seq + 1), stream=1))
    ledger.answer(result("0", ids(0, 1)), stream=1)
    unanswered = ledger.end_stream(1, "UNAVAILABLE: Socket closed")
    assert [m.seq for m in unanswered] == [1, 2]  # request 0 was answered: not sent again
    assert (ledger.state[2:] == RowState.PENDING).all() and ledger.n_violations == 0
    for message in unanswered:
        ledger.mark_sent(ledger.queue(message.seq, message.ids, stream=2, attempt=1))
    ledger.answer(result("1", ids(2, 3)), stream=2)
    ledger.answer(result("2", ids(4, 5)), stream=2)
    ledger.close(None)
    assert (ledger.state == RowState.OK).all()
    assert (ledger.vectors_sent, ledger.resent_messages, ledger.resent_vectors) == (6, 2, 4)
    assert ledger.duplicate_answers == 0 and ledger.n_violations == 0


def test_a_row_answered_twice_by_one_model_is_counted_once_and_keeps_its_first_score():
    ledger = Ledger(2)
    ledger.mark_sent(ledger.queue(0, ids(0, 1), stream=1))
    ledger.answer(result("0", ids(0, 1)), stream=1)
    ledger.mark_sent(ledger.queue(0, ids(0, 1), stream=2, attempt=1))  # resent anyway
    again = Result("0", ids(0, 1), np.full(2, 9.0, np.float32), np.ones(2, bool), 0.5, "v1")
    outcome = ledger.answer(again, stream=2)
    assert ledger.count(RowState.OK) == 2 and ledger.scores.tolist() == [1.0, 1.0]
    assert not ledger.is_anomaly.any() and len(outcome.ok_ids) == 0
    assert ledger.duplicate_answers == 2 and ledger.n_violations == 0
    assert ledger.model_versions == {"v1": 2}


def test_a_row_answered_by_two_models_is_reported():
    ledger = Ledger(2)
    ledger.mark_sent(ledger.queue(0, ids(0, 1), stream=1))
    ledger.answer(result("0", ids(0, 1)), stream=1)
    ledger.mark_sent(ledger.queue(0, ids(0, 1), stream=2, attempt=1))
    ledger.answer(Result("0", ids(0, 1), np.ones(2, np.float32), np.zeros(2, bool), 0.5, "v2"), 2)
    assert ledger.conflicting_ids == 2 and ledger.n_violations == 2
    assert ledger.violations[0] == (
        "id 0 answered by two models: 'v1', then 'v2' (the first answer is kept)"
    )
    assert ledger.count(RowState.OK) == 2


def test_an_error_answer_never_undoes_an_earlier_result():
    ledger = Ledger(2)
    ledger.mark_sent(ledger.queue(0, ids(0, 1), stream=1))
    ledger.answer(result("0", ids(0, 1)), stream=1)
    ledger.mark_sent(ledger.queue(0, ids(0, 1), stream=2, attempt=1))
    ledger.answer(Error("0", "INVALID_ARGUMENT: x", ids(0, 1)), stream=2)
    assert ledger.count(RowState.OK) == 2 and ledger.duplicate_answers == 2


def test_a_transient_error_answer_leaves_the_rows_pending_for_a_resend():
    ledger = Ledger(2)
    ledger.mark_sent(ledger.queue(0, ids(0, 1)))
    outcome = ledger.answer(Error("0", "RESOURCE_EXHAUSTED: busy", ids(0, 1), retryable=True))
    assert outcome.retry and outcome.message.seq == 0 and len(outcome.failed_ids) == 0
    assert (ledger.state == RowState.PENDING).all() and ledger.retried_answers == 1
    ledger.close("gave up")
    assert ledger.failures() == [("no answer (stream ended: gave up)", 2)]


def test_the_hang_detector_sees_how_long_the_oldest_message_waited():
    now = [10.0]
    ledger = Ledger(4, clock=lambda: now[0])
    assert ledger.oldest_wait(1) is None
    ledger.queue(0, ids(0, 1), stream=1)
    now[0] = 12.0
    ledger.queue(1, ids(2, 3), stream=1)
    now[0] = 15.0
    assert ledger.oldest_wait(1) == 5.0
    ledger.answer(result("0", ids(0, 1)), stream=1)
    assert ledger.oldest_wait(1) == 3.0


def test_severity_threshold_model_and_explanations_follow_their_rows():
    ledger = Ledger(3, top_k=1)
    ledger.mark_sent(ledger.queue(0, ids(0, 1, 2)))
    explanations = Explanations(
        names=["b", "a"],
        top=np.array([[0], [1], [1]], np.int32),
        share=np.array([[0.5], [0.6], [0.7]], np.float32),
        value=np.array([[1.0], [2.0], [3.0]], np.float32),
        expected=np.zeros((3, 1), np.float32),
        missing=[(), (0,), ()],
    )
    severity = np.array([0.1, 0.2, 0.3], np.float32)
    scores = np.array([1, 2, 3], np.float32)
    answer = Result("0", ids(2, 1, 0), scores, np.zeros(3, bool), 0.5, "v1", severity, explanations)
    ledger.answer(answer)  # ids in another order: each row keeps its own explanation
    assert ledger.severity.tolist() == np.float32([0.3, 0.2, 0.1]).tolist()
    assert ledger.threshold_used.tolist() == [0.5] * 3
    assert [ledger.feature_names[i] for i in ledger.top[:, 0]] == ["a", "a", "b"]
    assert ledger.top_value[:, 0].tolist() == [3.0, 2.0, 1.0]
    assert ledger.missing == {1: (ledger.feature_names.index("b"),)}
    assert ledger.model_names == ["v1"] and ledger.model_index.tolist() == [0, 0, 0]
