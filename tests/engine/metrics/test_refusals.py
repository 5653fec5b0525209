"""The refusal counter and its rate-limited log: a flood of refusals is counted in full and
logged as a few lines, the count of the ones not logged one by one still reaching the log."""

import logging
import time

import pytest
from prometheus_client import CollectorRegistry

from datasentinel.engine.metrics import refusals as reasons
from datasentinel.engine.metrics.refusals import Refusals


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counted(registry, code, reason) -> float:
    value = registry.get_sample_value(
        "datasentinel_refused_calls_total", {"code": code, "reason": reason}
    )
    return value or 0.0


def refusal_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.endswith("refusals")]


@pytest.fixture
def registry():
    return CollectorRegistry()


def test_a_flood_is_counted_in_full_and_logged_once_per_interval(registry, caplog):
    clock = Clock()
    refused = Refusals(clock=clock, interval=10.0, registry=registry)
    caplog.set_level(logging.WARNING)
    for _ in range(1000):
        refused.count("Score", "UNAUTHENTICATED", reasons.UNAUTHENTICATED, "ipv4:127.0.0.2")
    assert counted(registry, "UNAUTHENTICATED", reasons.UNAUTHENTICATED) == 1000
    lines = refusal_lines(caplog)
    assert len(lines) == 1, lines
    assert "refused 1 call(s): unauthenticated" in lines[0] and "ipv4:127.0.0.2" in lines[0]

    clock.now += 10.0  # the next one after the interval logs at once, with the ones held back
    refused.count("Score", "UNAUTHENTICATED", reasons.UNAUTHENTICATED)
    lines = refusal_lines(caplog)
    assert len(lines) == 2 and "refused 1000 call(s)" in lines[1], lines
    refused._flush.pop(reasons.UNAUTHENTICATED).cancel()


def test_held_back_refusals_reach_the_log_when_the_flood_stops(registry, caplog):
    refused = Refusals(interval=0.2, registry=registry)
    caplog.set_level(logging.WARNING)
    for _ in range(5):
        refused.count("Watch", "RESOURCE_EXHAUSTED", reasons.WATCH_LIMIT)
    deadline = time.monotonic() + 5
    while len(refusal_lines(caplog)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    lines = refusal_lines(caplog)
    assert len(lines) == 2, lines
    assert "refused 4 call(s) since the previous line: watch_limit" in lines[1]


def test_reasons_are_logged_apart_and_cancellations_only_counted(registry, caplog):
    refused = Refusals(clock=Clock(), registry=registry)
    caplog.set_level(logging.WARNING)
    refused.count("Score", "RESOURCE_EXHAUSTED", reasons.SHED)
    refused.count("Score", "RESOURCE_EXHAUSTED", reasons.PEER_LIMIT)
    refused.count("Score", "CANCELLED", reasons.CANCELLED)
    lines = refusal_lines(caplog)
    assert [line.split(": ")[1].split(" ")[0] for line in lines] == ["shed", "peer_limit"]
    assert counted(registry, "CANCELLED", reasons.CANCELLED) == 1
    assert counted(registry, "RESOURCE_EXHAUSTED", reasons.SHED) == 1
