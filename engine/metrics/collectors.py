"""Prometheus metrics of the engine, one set per process (prometheus-client).

With several worker processes, each writes its values to PROMETHEUS_MULTIPROC_DIR (set before the
first ``metrics()`` call) and the supervisor serves their sum, so the numbers add up.
"""

from __future__ import annotations

import bisect
import functools
import math

import numpy as np
from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
# Score / threshold: 1 is the decision boundary. A shift of this distribution is a drift signal
# that needs no second detector, and it reads the same for every model.
RATIO_BUCKETS = (0.01, 0.03, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0, 10.0, 100.0)
SMALL_BATCH = 16


class Metrics:
    def __init__(self) -> None:
        self.requests = Counter(
            "datasentinel_requests",
            "Requests by rpc and gRPC status code; each message of a stream counts as one.",
            ["rpc", "code"],
        )
        self.latency = Histogram(
            "datasentinel_request_latency_seconds",
            "Time from a request's arrival to its answer, by rpc.",
            ["rpc"],
            buckets=LATENCY_BUCKETS,
        )
        self.rows = Counter("datasentinel_rows_scored", "Vectors scored.")
        self.anomalies = Counter(
            "datasentinel_anomalies",
            "Vectors flagged as anomalies (under the threshold each request was answered with).",
        )
        self.nonfinite_scores = Counter(
            "datasentinel_nonfinite_scores",
            "Vectors the model scored NaN or Inf (e.g. a huge but finite input), answered as "
            "score +Inf, is_anomaly true.",
        )
        self.score_ratio = Histogram(
            "datasentinel_score_threshold_ratio",
            "Anomaly scores divided by the engine's threshold (above 1 = flagged, unless a "
            "request set its own threshold).",
            buckets=RATIO_BUCKETS,
        )
        self.batch_rows = Histogram(
            "datasentinel_batch_rows",
            "Vectors per model call, as the batcher merged concurrent requests.",
            buckets=BATCH_BUCKETS,
        )
        self.queue_depth = Gauge(
            "datasentinel_queue_depth",
            "Requests waiting for the model.",
            multiprocess_mode="livesum",
        )
        self.model = Gauge(
            "datasentinel_model_info",
            "The model being served (1) and the execution provider running it.",
            ["model_version", "model_sha256", "execution_provider"],
            multiprocess_mode="livemax",
        )
        # Every worker reloads the same artifacts: a counter summed over N workers showed one
        # reload as N. Each worker's own count, the engine's the highest of them (a worker
        # started after a reload has seen fewer; its files stay after it dies, so "max" holds).
        # A gauge by type, counting up like a counter: increase() and rate() read it alike.
        self.reloads = Gauge(
            "datasentinel_model_reloads_total",
            "Hot reload attempts by outcome, once per engine (each worker reloads the same "
            "artifacts; the most any worker saw).",
            ["outcome"],
            multiprocess_mode="max",
        )
        self._reload_counts = {"success": 0, "failure": 0}
        self.threshold = Gauge(
            "datasentinel_model_threshold",
            "The decision threshold in force for requests that do not set their own.",
            multiprocess_mode="livemax",
        )
        # labels() validates and locks on every call: on the per-request path, look children
        # up once (measured: metrics were ~20% of the CPU per single-vector message before).
        self._request_children: dict[tuple[str, str], tuple] = {}

    def observe_request(self, rpc: str, code: str, seconds: float, count: int = 1) -> None:
        """``count`` requests answered with ``code`` after ``seconds`` each (a stream's group
        of messages answered together: one counter and one histogram update, not ``count``)."""
        children = self._request_children.get((rpc, code))
        if children is None:
            children = (self.requests.labels(rpc, code), self.latency.labels(rpc))
            self._request_children[(rpc, code)] = children
        children[0].inc(count)
        if count == 1:
            children[1].observe(seconds)
        else:
            observe_repeated(children[1], seconds, count)

    def observe_scores(self, scores: np.ndarray, flags: np.ndarray, threshold: float) -> None:
        self.rows.inc(len(scores))
        flagged = int(np.count_nonzero(flags))
        if flagged:
            self.anomalies.inc(flagged)
        if threshold <= 0:  # the ratio is undefined; counts above still hold
            return
        if len(scores) <= SMALL_BATCH:  # numpy's per-call overhead dominates at a few rows
            for score in scores.tolist():
                ratio = score / threshold
                if -math.inf < ratio < math.inf:
                    self.score_ratio.observe(ratio)
                elif ratio == math.inf:  # counted, but kept out of the sum: Inf (or a NaN,
                    self.score_ratio._buckets[-1].inc(1)  # dropped) would poison it for good
        else:
            observe_many(self.score_ratio, scores / threshold)

    def observe_batch(self, rows: int, queued: int) -> None:
        self.batch_rows.observe(rows)
        self.queue_depth.set(queued)

    def serving(self, version: str, sha256: str, provider: str, previous=None) -> None:
        if previous is not None:
            self.model.labels(*previous).set(0)
        self.model.labels(version, sha256, provider).set(1)

    def reloaded(self, ok: bool) -> None:
        outcome = "success" if ok else "failure"
        self._reload_counts[outcome] += 1
        self.reloads.labels(outcome).set(self._reload_counts[outcome])

    def model_in_force(self, threshold: float) -> None:
        self.threshold.set(threshold)
        for outcome, count in self._reload_counts.items():  # both series exist from the start
            self.reloads.labels(outcome).set(count)


def observe_repeated(histogram: Histogram, value: float, count: int) -> None:
    """``histogram.observe(value)`` ``count`` times, as one update of its bucket and sum (the
    bucket ``observe`` picks: the first bound >= value; a test pins it to repeated ``observe``)."""
    histogram._sum.inc(value * count)
    histogram._buckets[bisect.bisect_left(histogram._upper_bounds, value)].inc(count)


def observe_many(histogram: Histogram, values: np.ndarray) -> None:
    """``histogram.observe(v)`` for every value, bucketed with numpy: a Python loop over 1024
    scores per message would cost more than scoring them. Uses the histogram's bucket values,
    which ``observe`` itself uses (a test pins the result to repeated ``observe``)."""
    if len(values) == 0:
        return
    # Counting "at most each bound" in the sorted values searches 12 bounds, not 1024 values:
    # half the cost of bucketing every value.
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    at_most = np.searchsorted(ordered, histogram._upper_bounds, side="right")
    counts = np.diff(at_most, prepend=0)
    for bucket, count in zip(histogram._buckets, counts.tolist(), strict=True):
        if count:
            bucket.inc(count)
    total = float(ordered.sum())
    if not np.isfinite(total):  # a NaN or Inf would poison the sum for good: leave it out
        total = float(ordered[np.isfinite(ordered)].sum())
    histogram._sum.inc(total)


@functools.cache
def metrics() -> Metrics:
    """This process's metrics (Prometheus metrics are process-global)."""
    return Metrics()
