import random

import grpc

from datasentinel.producer.stream.retry import RETRYABLE_STREAM_CODES, Backoff, ProgressDeadline


def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    backoff = Backoff(initial=0.1, maximum=2.0, rng=random.Random(7))
    for attempt, ceiling in [(0, 0.1), (1, 0.2), (2, 0.4), (4, 1.6), (5, 2.0), (500, 2.0)]:
        delays = [backoff.delay(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 100  # jittered: producers do not reconnect in lockstep


def test_progress_deadline_counts_time_without_progress():
    now = [0.0]
    deadline = ProgressDeadline(5.0, clock=lambda: now[0])
    now[0] = 4.0
    assert not deadline.expired() and deadline.remaining() == 1.0
    deadline.progress()
    now[0] = 8.9
    assert not deadline.expired()
    now[0] = 9.0
    assert deadline.expired()


def test_only_transient_stream_errors_are_retried():
    assert grpc.StatusCode.UNAVAILABLE in RETRYABLE_STREAM_CODES
    assert grpc.StatusCode.CANCELLED in RETRYABLE_STREAM_CODES  # the engine shutting down
    for final in ("UNAUTHENTICATED", "PERMISSION_DENIED", "INVALID_ARGUMENT", "UNIMPLEMENTED"):
        assert grpc.StatusCode[final] not in RETRYABLE_STREAM_CODES
