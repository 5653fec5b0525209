"""Several engine processes on one port: a Python process tops out near one core (the GIL), so
``--workers N`` runs N workers that each bind the port with SO_REUSEPORT (the kernel spreads
connections over them, as in gRPC's multiprocessing example), each with its own ONNX Runtime
session and batcher.

The supervisor checks the model and the port once (so start-up errors stay one line), forwards
SIGTERM/SIGINT/SIGHUP to every worker, serves the workers' summed Prometheus metrics, and starts a
worker again when one dies (``engine.workers.restarts``). Workers stop when their supervisor dies
(``engine.workers.parent_watch``), so a killed engine never leaves orphans holding the port.
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

from prometheus_client import CollectorRegistry, multiprocess

from datasentinel.engine.errors import BindError
from datasentinel.engine.metrics.worker_processes import WorkerProcesses
from datasentinel.engine.model.session import load_model
from datasentinel.engine.server import (
    configure_logging,
    port_in_use,
    run_engine,
    runtime_options,
    serve_metrics,
)
from datasentinel.engine.settings import EngineSettings
from datasentinel.engine.workers.parent_watch import Lifeline, arm_death_signal, supervisor_alive
from datasentinel.engine.workers.restarts import RestartBudget, Supervisor

log = logging.getLogger(__name__)


def run_workers(settings: EngineSettings, count: int) -> int:
    """Runs ``count`` workers until a signal stops them; returns the exit code."""
    # No worker to reload yet (the ones to come load the newest model): SIGHUP must not kill.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    load_model(settings.models_dir, runtime_options(settings), settings.threshold)  # fail fast
    metrics_dir = tempfile.mkdtemp(prefix="datasentinel-metrics-")
    # Read by prometheus-client when a worker imports it: values go to files, summed on scrape.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        with (
            _reserved_port(settings.bind_host, settings.port) as port,
            _reserved_http_port(settings) as http_port,
        ):
            # Every port is taken before "listening" is said: a busy metrics port is the error.
            processes = WorkerProcesses(count)
            _serve_metrics(settings, metrics_dir, processes)
            log.info("listening on %s:%d with %d workers", settings.bind_host, port, count)
            update = {"port": port, "metrics_port": -1, "http_port": http_port}
            return _supervise(settings.model_copy(update=update), count, processes)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _supervise(settings: EngineSettings, count: int, processes: WorkerProcesses) -> int:
    context = multiprocessing.get_context("spawn")
    supervisor_pid = os.getpid()

    def start(index: int):
        worker = context.Process(
            target=_worker, args=(settings, index, supervisor_pid), name=f"engine-worker-{index}"
        )
        # A reload request (SIGHUP) forwarded while the worker is still starting must not kill it
        # (SIGHUP's default action). Blocked here, it stays blocked in the new process until the
        # worker ignores it; one that comes meanwhile reaches the supervisor when unblocked.
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
        try:
            worker.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        processes.started(index, worker)
        return worker

    budget = RestartBudget(settings.worker_restart_limit, settings.worker_restart_window_seconds)
    # A dead worker's live gauges (queue depth, model info) must leave the summed metrics.
    return Supervisor(start, count, budget, on_death=multiprocess.mark_process_dead).run()


def _worker(settings: EngineSettings, index: int, supervisor_pid: int) -> None:
    """A worker process: one engine sharing the port; exits with the engine's exit code."""
    arm_death_signal()
    # Until the engine installs its SIGHUP handler, a reload request is moot (the model this
    # worker is about to load is the newest) and must not kill it: ignore, then unblock.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
    configure_logging(settings, prefix=f"worker-{index} ")
    if not supervisor_alive(supervisor_pid):
        log.error("the supervisor (pid %d) died before this worker started", supervisor_pid)
        raise SystemExit(1)
    raise SystemExit(asyncio.run(_serve_worker(settings, supervisor_pid)))


async def _serve_worker(settings: EngineSettings, supervisor_pid: int) -> int:
    watch = asyncio.create_task(Lifeline(supervisor_pid).watch())
    try:
        return await run_engine(settings, reuse_port=True)
    finally:
        watch.cancel()


@contextmanager
def _reserved_port(host: str, port: int) -> Iterator[int]:
    """Holds the port (SO_REUSEPORT, not listening) while the workers share it, after checking
    that nothing else uses it: without SO_REUSEPORT, the first bind fails if anyone does.

    Both sockets set SO_REUSEADDR: without it a bind fails for a minute after a stop, while the
    old connections sit in TIME_WAIT. On Linux SO_REUSEADDR still refuses a port that another
    socket listens on, so a running engine (or anything else serving there) is still found."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
            port = probe.getsockname()[1]
    except OSError:
        raise port_in_use(host, port) from None
    reservation = socket.socket(family, socket.SOCK_STREAM)
    reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    reservation.bind((host, port))
    try:
        yield port
    finally:
        reservation.close()


@contextmanager
def _reserved_http_port(settings: EngineSettings) -> Iterator[int]:
    """The REST port, held like the gRPC port while the workers share it (-1: REST off); port
    0 is resolved here, so that every worker serves the same one."""
    if settings.http_port < 0:
        yield -1
        return
    reservation = _reserved_port(settings.bind_host, settings.http_port)
    try:
        port = reservation.__enter__()
    except BindError:
        raise BindError(
            f"cannot serve REST on {settings.bind_host}:{settings.http_port}: the port is in use; "
            "choose another with --http-port / ENGINE_HTTP_PORT (-1 turns it off)"
        ) from None
    try:
        yield port
    finally:
        reservation.__exit__(None, None, None)


def _serve_metrics(settings: EngineSettings, metrics_dir: str, processes: WorkerProcesses) -> None:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=metrics_dir)
    registry.register(processes)
    serve_metrics(settings, registry)
