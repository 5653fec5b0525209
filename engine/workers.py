"""Several engine processes on one port: a Python process tops out near one core (the GIL), so
``--workers N`` runs N workers that each bind the port with SO_REUSEPORT (the kernel spreads
connections over them, as in gRPC's multiprocessing example), each with its own ONNX Runtime
session and batcher.

The supervisor checks the model and the port once (so start-up errors stay one line), forwards
SIGTERM/SIGINT/SIGHUP to every worker, serves the workers' summed Prometheus metrics, and stops
everything (exit 1) if a worker dies on its own: the orchestrator then restarts the engine whole.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import wait

from prometheus_client import CollectorRegistry, multiprocess

from engine.model import load_model
from engine.server import (
    configure_logging,
    port_in_use,
    run_engine,
    runtime_options,
    serve_metrics,
)
from engine.settings import EngineSettings

log = logging.getLogger(__name__)


def run_workers(settings: EngineSettings, count: int) -> int:
    """Runs ``count`` workers until a signal stops them; returns the exit code."""
    load_model(settings.models_dir, runtime_options(settings))  # fail fast, in one place
    metrics_dir = tempfile.mkdtemp(prefix="datasentinel-metrics-")
    # Read by prometheus-client when a worker imports it: values go to files, summed on scrape.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        with _reserved_port(settings.bind_host, settings.port) as port:
            log.info("listening on %s:%d with %d workers", settings.bind_host, port, count)
            _serve_metrics(settings, metrics_dir)
            worker_settings = settings.model_copy(update={"port": port, "metrics_port": -1})
            return _supervise(worker_settings, count)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _supervise(settings: EngineSettings, count: int) -> int:
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_worker, args=(settings, i), name=f"engine-worker-{i}")
        for i in range(count)
    ]
    for worker in workers:
        worker.start()
    stopping = _forward_signals(workers)
    while running := [w for w in workers if w.is_alive()]:
        wait([w.sentinel for w in running], timeout=1.0)
        died = [w for w in workers if w.exitcode not in (None, 0)]
        if died and not stopping:
            log.error("%s exited with %s; stopping the engine", died[0].name, died[0].exitcode)
            stopping.append(signal.SIGTERM)
            for worker in workers:
                if worker.is_alive():
                    worker.terminate()
    _mark_dead(workers)
    failed = [w for w in workers if w.exitcode != 0]
    return 1 if failed else 0


def _forward_signals(workers: list) -> list:
    """Installs handlers that pass signals on to the workers; returns the list of stop signals
    received so far (empty until a shutdown starts)."""
    stopping: list = []

    def forward(sig: int, frame) -> None:
        if sig != signal.SIGHUP:
            stopping.append(sig)
        for worker in workers:
            if worker.is_alive() and worker.pid:
                os.kill(worker.pid, sig)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    return stopping


def _worker(settings: EngineSettings, index: int) -> None:
    """A worker process: one engine sharing the port; exits with the engine's exit code."""
    configure_logging(settings, prefix=f"worker-{index} ")
    raise SystemExit(asyncio.run(run_engine(settings, reuse_port=True)))


@contextmanager
def _reserved_port(host: str, port: int) -> Iterator[int]:
    """Holds the port (SO_REUSEPORT, not listening) while the workers share it, after checking
    that nothing else uses it: without SO_REUSEPORT, the first bind fails if anyone does."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, port))
            port = probe.getsockname()[1]
    except OSError:
        raise port_in_use(host, port) from None
    reservation = socket.socket(family, socket.SOCK_STREAM)
    reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    reservation.bind((host, port))
    try:
        yield port
    finally:
        reservation.close()


def _serve_metrics(settings: EngineSettings, metrics_dir: str) -> None:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=metrics_dir)
    serve_metrics(settings, registry)


def _mark_dead(workers: list) -> None:
    for worker in workers:
        if worker.pid:
            multiprocess.mark_process_dead(worker.pid)
