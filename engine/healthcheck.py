"""``datasentinel-healthcheck``: exits 0 when the local engine's standard gRPC health service
reports SERVING, 1 otherwise. For container health checks and scripts; reads the engine's own
settings (ENGINE_PORT, ENGINE_TLS_*), so it needs no arguments where the engine needs none.

With TLS on (ENGINE_TLS_CERT_FILE set) it verifies the engine's certificate against
ENGINE_HEALTHCHECK_CA_FILE, or, when that is unset, against the engine's own certificate file
(right for a self-signed certificate, or a file whose chain ends with its CA). With mutual TLS it
presents ENGINE_HEALTHCHECK_CERT_FILE / _KEY_FILE. The health service needs no token."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from datasentinel.engine.server import SERVICE_NAME
from datasentinel.engine.settings import EngineSettings


def check(target: str, timeout: float, credentials: grpc.ChannelCredentials | None = None) -> str:
    """The serving status name of the scoring service at ``target``, or why it could not be had."""
    channel = (
        grpc.secure_channel(target, credentials)
        if credentials is not None
        else grpc.insecure_channel(target)
    )
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=timeout
            )
        except grpc.RpcError as exc:
            return exc.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None else None


def credentials(settings: EngineSettings) -> grpc.ChannelCredentials | None:
    """TLS credentials matching the engine's settings; None when the engine serves plain text."""
    if settings.tls_cert_file is None:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=_read(settings.healthcheck_ca_file or settings.tls_cert_file),
        private_key=_read(settings.healthcheck_key_file),
        certificate_chain=_read(settings.healthcheck_cert_file),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="datasentinel-healthcheck", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help="default: ENGINE_PORT or 9000")
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args(argv)
    settings = EngineSettings(_cli_parse_args=False)
    port = args.port if args.port is not None else settings.port
    try:
        creds = credentials(settings)
    except OSError as exc:
        print(f"cannot read a TLS file: {exc}")
        return 1
    status = check(f"{args.host}:{port}", args.timeout, creds)
    mode = "TLS" if creds is not None else "plain text"
    print(f"{args.host}:{port} ({mode}) {SERVICE_NAME}: {status}")
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
