"""The channel to the engine: how it reconnects and keeps alive, and round_robin over several
replicas behind one target; TLS and the token come from channel/security.py."""

from __future__ import annotations

import grpc

from datasentinel.producer.channel.security import ClientSecurity, secure_channel

# Reconnect quickly while waiting for an engine to come up: gRPC's default backoff (1 s growing
# to 120 s) would leave a channel refusing calls long after the engine started listening.
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    # Keepalive pings while a stream is open find an engine that vanished without closing the
    # connection (host down, network cut): a ping unanswered in 10 s breaks the stream, and the
    # producer reconnects. 20 s stays above the engine's minimum ping interval (10 s by default,
    # ENGINE_MIN_CLIENT_PING_INTERVAL_SECONDS), which closes connections that ping faster.
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 0),
]

# With several replicas behind one target: a connection to each, and each new call (stream) to
# the next ready one; replicas refusing connections are skipped until they listen. (gRPC's
# default, pick_first, would send every stream to the first address that answers.)
BALANCED_OPTIONS = [("grpc.lb_policy_name", "round_robin")]


def open_channel(
    target: str, security: ClientSecurity | None = None, *, balanced: bool = False
) -> grpc.Channel:
    """A channel to the engine, with TLS and the bearer token when ``security`` says so;
    ``balanced``: round_robin over every address the target resolves to."""
    options = CHANNEL_OPTIONS + BALANCED_OPTIONS if balanced else CHANNEL_OPTIONS
    return secure_channel(target, options, security)
