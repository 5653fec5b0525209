"""Every gRPC server option of the engine, in one place: message and stream limits, port sharing,
connection liveness (keepalive pings, the ping policy clients must follow, idle and age limits).
Plain grpc core channel arguments, built from the engine's settings; ``server.py`` passes them to
``grpc.aio.server`` with ``maximum_concurrent_rpcs`` (a keyword of its own, the call limit)."""

from __future__ import annotations

from datasentinel.engine.settings import EngineSettings

# grpc's own default for max_connection_age_grace is "infinite"; it is left unset for 0.
_UNSET = 0
# The transport accepts messages somewhat above the app's limit so that the engine, not gRPC,
# answers a message between the two: as one failed request (RESOURCE_EXHAUSTED), while a stream
# goes on. A message above the transport limit ends its whole call (gRPC's own RESOURCE_EXHAUSTED).
TRANSPORT_MARGIN = 0.25
MIN_TRANSPORT_MARGIN_BYTES = 1 << 20


def server_options(settings: EngineSettings, reuse_port: bool = False) -> list[tuple[str, int]]:
    """The channel arguments for ``grpc.aio.server(options=...)``. ``reuse_port``: share the
    port with the other workers (SO_REUSEPORT)."""
    return [
        *limit_options(settings.max_message_mb * 1024 * 1024, settings.max_streams_per_connection),
        # gRPC shares ports by default (SO_REUSEPORT): then a second engine on a busy port
        # would silently split traffic with the first instead of failing. Only our own
        # workers share it, after the supervisor checked that the port was free.
        ("grpc.so_reuseport", int(reuse_port)),
        *liveness_options(settings),
    ]


def transport_receive_limit(app_limit_bytes: int) -> int:
    margin = max(MIN_TRANSPORT_MARGIN_BYTES, int(app_limit_bytes * TRANSPORT_MARGIN))
    return app_limit_bytes + margin


def limit_options(max_message_bytes: int, max_streams_per_connection: int) -> list[tuple[str, int]]:
    """Message sizes and streams per connection, which keep one client from taking it all."""
    return [
        ("grpc.max_receive_message_length", transport_receive_limit(max_message_bytes)),
        ("grpc.max_send_message_length", max_message_bytes),
        # HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: a client opening more waits for a free one.
        ("grpc.max_concurrent_streams", max_streams_per_connection),
    ]


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def liveness_options(settings: EngineSettings) -> list[tuple[str, int]]:
    """Keepalive pings (find clients that vanished without closing) and idle / age limits that
    reclaim abandoned connections."""
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
