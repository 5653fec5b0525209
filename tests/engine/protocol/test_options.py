"""The engine's settings become grpc core channel arguments, all in one list: limits, port
sharing, liveness."""

from datasentinel.engine.protocol.options import server_options, transport_receive_limit
from datasentinel.engine.settings import EngineSettings


def test_defaults_ping_clients_and_reclaim_idle_connections():
    options = dict(server_options(EngineSettings()))
    assert options["grpc.keepalive_time_ms"] == 30_000
    assert options["grpc.keepalive_timeout_ms"] == 10_000
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert options["grpc.http2.min_ping_interval_without_data_ms"] == 10_000
    assert options["grpc.http2.max_pings_without_data"] == 0
    assert options["grpc.max_connection_idle_ms"] == 300_000
    # Connection age limits are off unless asked for (grpc's default: forever).
    assert "grpc.max_connection_age_ms" not in options
    assert "grpc.max_connection_age_grace_ms" not in options


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("ENGINE_KEEPALIVE_SECONDS", "5")
    monkeypatch.setenv("ENGINE_MAX_CONNECTION_IDLE_SECONDS", "0")
    monkeypatch.setenv("ENGINE_MAX_CONNECTION_AGE_SECONDS", "600")
    monkeypatch.setenv("ENGINE_MAX_CONNECTION_AGE_GRACE_SECONDS", "30")
    options = dict(server_options(EngineSettings()))
    assert options["grpc.keepalive_time_ms"] == 5_000
    assert "grpc.max_connection_idle_ms" not in options  # 0 = never
    assert options["grpc.max_connection_age_ms"] == 600_000
    assert options["grpc.max_connection_age_grace_ms"] == 30_000


def test_transport_limit_is_above_the_app_limit_and_streams_are_capped(monkeypatch):
    monkeypatch.setenv("ENGINE_MAX_MESSAGE_MB", "64")
    monkeypatch.setenv("ENGINE_MAX_STREAMS_PER_CONNECTION", "7")
    options = dict(server_options(EngineSettings()))
    assert options["grpc.max_receive_message_length"] == transport_receive_limit(64 << 20)
    assert transport_receive_limit(64 << 20) > 64 << 20
    assert transport_receive_limit(1) >= 1 + (1 << 20)
    assert options["grpc.max_send_message_length"] == 64 << 20
    assert options["grpc.max_concurrent_streams"] == 7


def test_only_workers_share_the_port():
    assert dict(server_options(EngineSettings()))["grpc.so_reuseport"] == 0
    assert dict(server_options(EngineSettings(), reuse_port=True))["grpc.so_reuseport"] == 1
