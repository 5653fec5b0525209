"""The engine's own request counts and durations, read back from its Prometheus metrics for the
inference protocol's ModelStatistics (gRPC and REST): one source, so statistics and /metrics
never disagree.

With several workers, each writes its values to PROMETHEUS_MULTIPROC_DIR; reading that folder
gives the engine's totals whichever worker answers (a load balancer's client would otherwise see
one worker's share, different on each call).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from prometheus_client import REGISTRY, multiprocess
from prometheus_client.registry import Collector

# The rpcs (and stream messages) that score rows, on every transport.
INFERENCE_RPCS = frozenset(
    {"Score", "ScoreStream", "ModelInfer", "ModelStreamInfer", "RestModelInfer"}
)


@dataclass(frozen=True)
class Statistics:
    rows: int  # vectors scored
    model_calls: int  # calls into the model (the batcher merges requests)
    succeeded: int  # inference requests answered OK
    failed: int  # inference requests answered with an error (refusals included)
    seconds: float  # total time from arrival to answer of those requests


def _collector() -> Collector:
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        return multiprocess.MultiProcessCollector(None, path=path)
    return REGISTRY


def read_statistics(collector: Collector | None = None) -> Statistics:
    """The engine's totals since start (all workers, when there are several)."""
    totals = {"rows": 0.0, "calls": 0.0, "ok": 0.0, "failed": 0.0, "seconds": 0.0}
    for family in (collector or _collector()).collect():
        for sample in family.samples:
            _add(totals, sample.name, sample.labels, sample.value)
    return Statistics(
        rows=int(totals["rows"]),
        model_calls=int(totals["calls"]),
        succeeded=int(totals["ok"]),
        failed=int(totals["failed"]),
        seconds=totals["seconds"],
    )


def _add(totals: dict[str, float], name: str, labels: dict[str, str], value: float) -> None:
    if name == "datasentinel_rows_scored_total":
        totals["rows"] += value
    elif name == "datasentinel_batch_rows_count":
        totals["calls"] += value
    elif name == "datasentinel_requests_total" and labels.get("rpc") in INFERENCE_RPCS:
        totals["ok" if labels.get("code") == "OK" else "failed"] += value
    elif name == "datasentinel_request_latency_seconds_sum" and labels.get("rpc") in INFERENCE_RPCS:
        totals["seconds"] += value
