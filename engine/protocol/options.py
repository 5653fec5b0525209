"""gRPC server options for connection liveness: keepalive pings (find clients that vanished
without closing), the ping policy clients must follow, and idle / age limits that reclaim
abandoned connections. Plain grpc core channel arguments, built from the engine's settings."""

from __future__ import annotations

from datasentinel.engine.settings import EngineSettings

# grpc's own default for max_connection_age_grace is "infinite"; it is left unset for 0.
_UNSET = 0


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def server_options(settings: EngineSettings) -> list[tuple[str, int]]:
    """The channel arguments to append to ``grpc.aio.server(options=...)``."""
    options = [
        ("grpc.keepalive_time_ms", _ms(settings.keepalive_seconds)),
        ("grpc.keepalive_timeout_ms", _ms(settings.keepalive_timeout_seconds)),
        # Without this, grpc allows a client's pings on a connection with no call only every
        # 2 hours, and closes producers that keep an idle connection warm with pings.
        ("grpc.keepalive_permit_without_calls", 1),
        (
            "grpc.http2.min_ping_interval_without_data_ms",
            round(settings.min_client_ping_interval_seconds * 1000),
        ),
        # Our own pings must go on while a long stream sends no data (grpc's default stops
        # after 2 pings), or a client that vanished mid-stream would hold its stream forever.
        ("grpc.http2.max_pings_without_data", 0),
    ]
    limits = {
        "grpc.max_connection_idle_ms": settings.max_connection_idle_seconds,
        "grpc.max_connection_age_ms": settings.max_connection_age_seconds,
        "grpc.max_connection_age_grace_ms": settings.max_connection_age_grace_seconds,
    }
    options += [(name, _ms(seconds)) for name, seconds in limits.items() if seconds > _UNSET]
    return options
