"""``python -m engine.healthcheck``: exits 0 when the local engine's standard gRPC health service
reports SERVING, 1 otherwise. For container health checks and scripts; reads ENGINE_PORT like the
engine itself."""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from engine.server import SERVICE_NAME
from engine.settings import EngineSettings


def check(target: str, timeout: float) -> str:
    """The serving status name of the scoring service at ``target``, or why it could not be had."""
    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=timeout
            )
        except grpc.RpcError as exc:
            return exc.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.healthcheck", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help="default: ENGINE_PORT or 9000")
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args(argv)
    port = args.port if args.port is not None else EngineSettings(_cli_parse_args=False).port
    status = check(f"{args.host}:{port}", args.timeout)
    print(f"{args.host}:{port} {SERVICE_NAME}: {status}")
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
