"""The engine's liveness settings become grpc core channel arguments."""

from datasentinel.engine.protocol.keepalive import server_options
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
