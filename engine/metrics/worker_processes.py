"""Per-worker process metrics for the supervisor's /metrics: prometheus-client's multiprocess
mode serves only what the workers write to files, so the ``process_*`` metrics (CPU, resident
memory, open files) that a single process exposes vanish with several workers. Here the
supervisor reads each live worker's /proc itself (prometheus-client's own ProcessCollector, one
per worker pid) and labels the samples ``worker="<index>"``; its own are ``worker="supervisor"``.

Beside them: ``datasentinel_workers{state}`` (configured, alive) for a "worker down" alert, and
``datasentinel_worker_restarts_total``, the workers started again after one died.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from multiprocessing.process import BaseProcess

from prometheus_client import ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

SUPERVISOR = "supervisor"


class WorkerProcesses(Collector):
    """``started(index, process)`` is called by the supervisor for every worker it starts."""

    def __init__(self, configured: int) -> None:
        self._configured = configured
        self._lock = threading.Lock()  # started() on the main thread, collect() on HTTP ones
        self._workers: dict[int, BaseProcess] = {}
        self._restarts = 0

    def started(self, index: int, process: BaseProcess) -> None:
        with self._lock:
            if index in self._workers:
                self._restarts += 1
            self._workers[index] = process

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            workers = sorted(self._workers.items())
            restarts = self._restarts
        alive = [(str(i), w.pid) for i, w in workers if w.pid and w.is_alive()]
        families: dict[str, Metric] = {}
        for worker, pid in [(SUPERVISOR, "self"), *alive]:
            _add_process(families, worker, str(pid))
        yield from families.values()
        states = GaugeMetricFamily(
            "datasentinel_workers",
            "Engine worker processes: configured, and alive now (fewer alive: a worker died "
            "and is being started again, or restarts stopped).",
            labels=["state"],
        )
        states.add_metric(["configured"], self._configured)
        states.add_metric(["alive"], len(alive))
        yield states
        yield CounterMetricFamily(
            "datasentinel_worker_restarts",
            "Workers started again after one died (a crash, the OOM killer, a kill).",
            value=restarts,
        )


def _add_process(families: dict[str, Metric], worker: str, pid: str) -> None:
    """Adds one process's ``process_*`` samples, labelled by ``worker``. A worker that exits
    between the liveness check and the read has no /proc left: it is simply left out."""
    collector = ProcessCollector(namespace="", pid=lambda: pid, registry=None)
    for family in collector.collect():
        merged = families.setdefault(
            family.name, Metric(family.name, family.documentation + ", by worker", family.type)
        )
        for sample in family.samples:
            merged.add_sample(sample.name, {**sample.labels, "worker": worker}, sample.value)
