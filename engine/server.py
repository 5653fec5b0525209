"""The engine process: load the model, serve gRPC (scoring, health, reflection), stop cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from datasentinel.engine.errors import BindError, EngineError
from datasentinel.engine.metrics.collectors import metrics
from datasentinel.engine.metrics.core_calls import core_calls
from datasentinel.engine.metrics.endpoint import serve_metrics
from datasentinel.engine.metrics.model_gauges import follow_model
from datasentinel.engine.model.providers import TensorRTOptions
from datasentinel.engine.model.reload import ModelReloader
from datasentinel.engine.model.session import RuntimeOptions, load_model
from datasentinel.engine.port_file import write_port_file
from datasentinel.engine.protocol import decoding
from datasentinel.engine.protocol import options as grpc_options
from datasentinel.engine.protocol.call_admission import CallAdmission, CallLimits
from datasentinel.engine.protocol.oip_servicer import InferenceServicer
from datasentinel.engine.protocol.v1_servicer import AnomalyScorerServicer
from datasentinel.engine.rest.server import start_rest
from datasentinel.engine.scoring.core import Limits, ScoringCore
from datasentinel.engine.security import add_port, auth_interceptors
from datasentinel.engine.settings import EngineSettings
from datasentinel.oip import grpc_predict_v2_pb2 as oip
from datasentinel.oip import grpc_predict_v2_pb2_grpc as oip_grpc
from datasentinel.v1 import scoring_pb2 as pb
from datasentinel.v1 import scoring_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["AnomalyScorer"].full_name
OIP_SERVICE_NAME = oip.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
HEALTH_SERVICE_NAME = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def runtime_options(settings: EngineSettings) -> RuntimeOptions:
    trt_cache = settings.engine_cache_dir if settings.trt_engine_cache else None
    return RuntimeOptions(
        providers=tuple(settings.providers),
        strict_providers=settings.strict_providers,
        tensorrt=TensorRTOptions(fp16=settings.trt_fp16, engine_cache_dir=trt_cache),
        intra_op_threads=settings.intra_op_threads,
    )


def limits(settings: EngineSettings) -> Limits:
    return Limits(
        max_batch_rows=settings.max_batch_rows,
        max_merge_rows=max(settings.max_merge_rows, settings.max_batch_rows),
        max_queue=settings.max_queue,
        inline_rows=settings.inline_rows,
        max_inflight_rows=settings.max_inflight_rows,
    )


class ShutdownSignals:
    """SIGTERM/SIGINT become one "should exit" event; a second signal skips the grace period.
    SIGHUP asks for a model reload."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.forced = asyncio.Event()
        self.reload = asyncio.Event()

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self.reload.set)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.requested.is_set():
            log.warning("second %s: stopping now, cancelling in-flight calls", sig.name)
            self.forced.set()
        else:
            log.info("%s received: finishing in-flight calls, then exiting", sig.name)
            self.requested.set()


def configure_logging(settings: EngineSettings, prefix: str = "") -> None:
    logging.basicConfig(
        level=settings.log_level_number,
        format=f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s",
    )


async def run_engine(settings: EngineSettings, reuse_port: bool = False) -> int:
    """One engine process until SIGTERM/SIGINT; returns its exit code (2: a start-up problem
    a user can fix, logged as one line)."""
    signals = ShutdownSignals()
    signals.install()
    try:
        await serve(settings, signals, reuse_port)
    except EngineError as exc:
        log.error("%s", exc)
        return 2
    return 0


async def serve(
    settings: EngineSettings, signals: ShutdownSignals, reuse_port: bool = False
) -> None:
    """Runs the engine until ``signals.requested`` is set. ``reuse_port``: share the port with
    the other workers (SO_REUSEPORT)."""
    options = runtime_options(settings)
    model = load_model(settings.models_dir, options, settings.threshold)
    core = ScoringCore(model, limits(settings))
    reloader = ModelReloader(
        core,
        settings.models_dir,
        options,
        settings.reload_poll_seconds,
        threshold=settings.threshold,
    )
    health = health_aio.HealthServicer()
    # One admission for both transports: a client's REST and gRPC calls share its budget.
    admission = CallAdmission(call_limits(settings))
    server = _build_server(settings, core, health, admission, reuse_port)
    await _set_health(health, NOT_SERVING)
    port = _bind(server, settings)
    serve_metrics(settings)
    metrics().serving(model.model_version, model.config.model_sha256, model.provider)
    rest = await start_rest(settings, core, admission.calls, reuse_port)  # a busy port: exit 2
    await server.start()
    log.info("listening on %s:%d", settings.bind_host, port)
    try:
        await core.start()
        await _set_health(health, SERVING)
        log.info("SERVING model %s on %s", model.model_version, model.provider)
        write_port_file(settings.port_file, port)
        async with asyncio.TaskGroup() as background:
            tasks = [
                background.create_task(reloader.run()),
                background.create_task(_forward(signals.reload, reloader.request)),
                background.create_task(core_calls().run()),
                background.create_task(follow_model(core)),
            ]
            await signals.requested.wait()
            for task in tasks:
                task.cancel()
    finally:
        core.ready = False
        await health.enter_graceful_shutdown()
        stopping = [_stop(server, settings.grace_seconds, signals.forced)]
        stopping += [rest.cleanup()] if rest is not None else []
        await asyncio.gather(*stopping)
        await core.close()
        log.info("stopped")


def call_limits(settings: EngineSettings) -> CallLimits:
    return CallLimits(
        calls=settings.max_concurrent_rpcs,
        calls_per_peer=settings.max_calls_per_peer,
        watches=settings.max_health_watches,
        watches_per_peer=settings.max_health_watches_per_peer,
        stream_idle_seconds=settings.stream_idle_seconds,
    )


def backstop_rpcs(limits: CallLimits) -> int:
    """gRPC's own call cap, far above the budgets of engine/protocol/call_admission.py (which
    refuse first, and count it): only a bound on memory if those were ever bypassed. Health
    checks and calls being refused hold a gRPC slot for a moment too, hence the margin."""
    return 2 * (limits.calls + limits.watches) + 256


def _build_server(
    settings: EngineSettings,
    core: ScoringCore,
    health: health_aio.HealthServicer,
    admission: CallAdmission,
    reuse_port: bool,
) -> grpc.aio.Server:
    max_bytes = settings.max_message_mb * 1024 * 1024
    server = grpc.aio.server(
        interceptors=auth_interceptors(settings),
        maximum_concurrent_rpcs=backstop_rpcs(admission.limits),
        options=grpc_options.server_options(settings, reuse_port),
    )
    # decoding.register: the generated registration, with request decoding that cannot fail a
    # call, and each handler inside its call budget.
    buffer = int(settings.stream_buffer_mb * 1024 * 1024)
    services = [
        (
            pb_grpc.add_AnomalyScorerServicer_to_server,
            AnomalyScorerServicer(core, settings.stream_window, buffer),
        ),
        (
            oip_grpc.add_GRPCInferenceServiceServicer_to_server,
            InferenceServicer(core, settings.oip_model_name, settings.stream_window, buffer),
        ),
        (health_pb2_grpc.add_HealthServicer_to_server, health),
    ]
    if settings.reflection:
        names = (SERVICE_NAME, OIP_SERVICE_NAME, HEALTH_SERVICE_NAME, reflection.SERVICE_NAME)
        services.append(
            (
                reflection_pb2_grpc.add_ServerReflectionServicer_to_server,
                reflection.aio.ReflectionServicer(names),
            )
        )
    for add_to_server, servicer in services:
        decoding.register(add_to_server, servicer, server, max_bytes, admission.guard)
    return server


def _bind(server: grpc.aio.Server, settings: EngineSettings) -> int:
    address = f"{settings.bind_host}:{settings.port}"
    try:
        port = add_port(server, address, settings)
    except RuntimeError:
        port = 0
    if port == 0:
        raise port_in_use(settings.bind_host, settings.port)
    return port


def port_in_use(host: str, port: int) -> BindError:
    return BindError(
        f"cannot listen on {host}:{port}: port {port} is already in use (or the address is not "
        "available); stop the other process or choose another port with --port / ENGINE_PORT"
    )


async def _forward(event: asyncio.Event, action) -> None:
    """Calls ``action`` each time ``event`` is set (signal handlers only set events)."""
    while True:
        await event.wait()
        event.clear()
        action()


async def _set_health(health: health_aio.HealthServicer, status: int) -> None:
    for service in ("", SERVICE_NAME):
        await health.set(service, status)


async def _stop(server: grpc.aio.Server, grace: float, forced: asyncio.Event) -> None:
    """Stops accepting calls and lets in-flight ones finish within ``grace`` seconds, or at once
    when a second signal arrives."""
    graceful = asyncio.create_task(server.stop(grace))
    force = asyncio.create_task(forced.wait())
    await asyncio.wait((graceful, force), return_when=asyncio.FIRST_COMPLETED)
    if not graceful.done():
        await server.stop(0)
    await graceful
    force.cancel()
