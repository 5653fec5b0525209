"""Is the engine ready for this input? Wait for SERVING, then check the model fits the vectors."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from datasentinel.producer.errors import EngineNotReady, InputMismatch
from datasentinel.producer.inputs.sources import ModelSpec, Source
from datasentinel.v1 import scoring_pb2, scoring_pb2_grpc

log = logging.getLogger(__name__)

SERVICE = "datasentinel.v1.AnomalyScorer"
SERVING = health_pb2.HealthCheckResponse.SERVING
# Longest a single health check or GetModelInfo call may take.
CALL_TIMEOUT_S = 5.0


def wait_until_serving(
    channel: grpc.Channel,
    target: str,
    timeout: float,
    *,
    first_delay: float = 0.1,
    max_delay: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> None:
    """Polls the standard health service until the scorer is SERVING, with exponential backoff
    (``first_delay`` doubling to ``max_delay``), for at most ``timeout`` seconds. Refused
    connections, UNAVAILABLE and NOT_SERVING are retried; at the deadline, EngineNotReady says
    what was seen last."""
    stub = health_pb2_grpc.HealthStub(channel)
    request = health_pb2.HealthCheckRequest(service=SERVICE)
    deadline = clock() + timeout
    delay = first_delay
    last = "no answer"
    while (remaining := deadline - clock()) > 0:
        status = _check(stub, request, min(remaining, CALL_TIMEOUT_S))
        if status == "SERVING":
            log.info("engine at %s is SERVING", target)
            return
        if status != last:
            log.info("engine at %s not ready yet (%s); retrying", target, status)
        last = status
        remaining = deadline - clock()
        if remaining > 0:
            sleep(min(delay, remaining))
        delay = min(delay * 2, max_delay)
    raise EngineNotReady(
        f"engine at {target} not SERVING after {timeout:g} s (last: {last}); is it running? "
        "see producer/README.md, Troubleshooting"
    )


def _check(stub, request, timeout: float) -> str:
    """The scorer's status, or what went wrong asking for it, in a few words."""
    try:
        response = stub.Check(request, timeout=timeout)
    except grpc.RpcError as e:
        return _describe_failure(e)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def _describe_failure(error: grpc.RpcError) -> str:
    code, details = error.code(), error.details() or ""
    if code == grpc.StatusCode.UNAVAILABLE and "refused" in details.lower():
        return "connection refused"
    if code == grpc.StatusCode.NOT_FOUND:
        return f"health service does not know {SERVICE} yet (NOT_FOUND)"
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return "no health service on that port (UNIMPLEMENTED): is it the engine?"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return "health check timed out"
    return f"{code.name}: {details}"


def fetch_model_info(channel: grpc.Channel, target: str) -> scoring_pb2.ModelInfo:
    stub = scoring_pb2_grpc.AnomalyScorerStub(channel)
    try:
        return stub.GetModelInfo(scoring_pb2.GetModelInfoRequest(), timeout=CALL_TIMEOUT_S)
    except grpc.RpcError as e:
        raise EngineNotReady(
            f"engine at {target} is SERVING but GetModelInfo failed: {e.code().name}: {e.details()}"
        ) from e


def model_spec(info: scoring_pb2.ModelInfo) -> ModelSpec:
    return ModelSpec(
        list(info.feature_names), info.input_dim, info.accepts_missing, info.model_version
    )


def check_input(info: scoring_pb2.ModelInfo, source: Source, batch_size: int) -> int:
    """Raises InputMismatch when the vectors' width is not the model's input_dim. (CSV columns
    are matched to the model's features by name when the source is read:
    producer/inputs/sources.py.)
    Returns the batch size to use: lowered to the engine's max_batch_rows when above it."""
    if source.width != info.input_dim:
        names = ", ".join(info.feature_names) or "names unknown"
        raise InputMismatch(
            f"{source.description} has {source.width} features per vector but the engine's model "
            f"(version {info.model_version or '?'}) expects {info.input_dim} ({names})"
        )
    expected = list(info.feature_names)
    if source.feature_names is not None and expected and source.feature_names != expected:
        log.warning(
            "the features of %s are not the model's: %s vs %s; the vectors are sent in the "
            "source's order",
            source.description,
            source.feature_names,
            expected,
        )
    if info.max_batch_rows and batch_size > info.max_batch_rows:
        log.warning(
            "batch size %d is above the engine's max_batch_rows %d; using %d",
            batch_size,
            info.max_batch_rows,
            info.max_batch_rows,
        )
        return info.max_batch_rows
    return batch_size
