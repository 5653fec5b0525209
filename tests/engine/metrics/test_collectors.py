"""Bulk histogram observation must count exactly like prometheus-client's own observe()."""

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from datasentinel.engine.metrics.collectors import SMALL_BATCH, observe_many, observe_repeated


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


@pytest.mark.parametrize("value", [0.0, 0.3, 0.5, 0.7, 1.0, 2.0, 7.5])
def test_observe_repeated_equals_observe_count_times(value):
    one, repeated = CollectorRegistry(), CollectorRegistry()
    by_one = Histogram("h", "h", buckets=(0.5, 1, 2), registry=one)
    by_repeated = Histogram("h", "h", buckets=(0.5, 1, 2), registry=repeated)
    for _ in range(5):
        by_one.observe(value)
    observe_repeated(by_repeated, value, 5)
    assert exposition(one) == exposition(repeated)


def test_observe_many_buckets_infinities_and_nan_as_observe_does():
    values = np.array([np.inf, 0.2, np.nan, 1.5, 0.5], dtype=np.float32)
    one, many = CollectorRegistry(), CollectorRegistry()
    by_one = Histogram("h", "h", buckets=(0.5, 1, 2), registry=one)
    by_many = Histogram("h", "h", buckets=(0.5, 1, 2), registry=many)
    for value in values.tolist():
        by_one.observe(value)
    observe_many(by_many, values)

    def buckets(registry):
        return [line for line in exposition(registry) if "_bucket" in line or "_count" in line]

    assert buckets(one) == buckets(many)
    assert 'h_bucket{le="+Inf"} 4.0' in buckets(many)  # NaN lands in no bucket
    (total,) = (float(line.split()[-1]) for line in exposition(many) if line.startswith("h_sum"))
    assert total == pytest.approx(2.2)  # the finite values only: one NaN must not poison it


def test_small_and_large_batches_land_in_the_same_buckets():
    small, large = CollectorRegistry(), CollectorRegistry()
    scores = np.array([0.05, 0.4, 0.5, 0.6, 2.0, 30.0] * 5, dtype=np.float32)
    for registry, chunks in ((small, np.split(scores, 10)), (large, [scores])):
        histogram = Histogram("r", "r", buckets=(0.1, 1.0, 2.0, 10.0), registry=registry)
        for chunk in chunks:
            if len(chunk) <= SMALL_BATCH:
                for value in chunk.tolist():
                    histogram.observe(value)
            else:
                observe_many(histogram, chunk)
    buckets = [line for line in exposition(small) if "_sum" not in line]
    assert buckets == [line for line in exposition(large) if "_sum" not in line]
    small_sum, large_sum = (
        float(line.split()[-1]) for r in (small, large) for line in exposition(r) if "_sum" in line
    )
    assert small_sum == pytest.approx(large_sum, rel=1e-6)
