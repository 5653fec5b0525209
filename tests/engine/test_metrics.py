"""Bulk histogram observation must count exactly like prometheus-client's own observe()."""

import numpy as np
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from engine.metrics import observe_many


def exposition(registry):
    return [
        line for line in generate_latest(registry).decode().splitlines() if "_created" not in line
    ]


def test_observe_many_equals_observe_one_by_one():
    values = np.array([0.0, 0.1, 0.5, 0.5000001, 0.7, 1.0, 2.0, 3.0, 1e9])
    one, many = CollectorRegistry(), CollectorRegistry()
    by_one = Histogram("h", "h", buckets=(0.5, 1, 2), registry=one)
    by_many = Histogram("h", "h", buckets=(0.5, 1, 2), registry=many)
    for value in values:
        by_one.observe(value)
    observe_many(by_many, values)
    assert exposition(one) == exposition(many)
    assert 'h_bucket{le="0.5"} 3.0' in exposition(many)
