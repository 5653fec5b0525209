"""The engine connection settings the producer and the bridge share: same flags, same variables,
and only the documented variables (not a bare ``TLS_CA_FILE`` left in the environment)."""

from __future__ import annotations

from pathlib import Path

import pytest

from datasentinel.producer.kafka.settings import BridgeSettings
from datasentinel.producer.settings import ProducerSettings
from datasentinel.settings_loader import load_settings

TOOLS = [ProducerSettings, BridgeSettings]
CONNECTION = [
    "engine_host",
    "engine_port",
    "engine_target",
    "tls",
    "tls_ca_file",
    "tls_cert_file",
    "tls_key_file",
    "tls_server_name",
    "auth_token_file",
]


@pytest.mark.parametrize("tool", TOOLS)
def test_documented_variables_configure_the_connection(tool, monkeypatch):
    monkeypatch.setenv("ENGINE_HOST", "engine.internal")
    monkeypatch.setenv("ENGINE_PORT", "9100")
    monkeypatch.setenv("PRODUCER_TLS_CA_FILE", "/etc/ca.pem")
    monkeypatch.setenv("PRODUCER_AUTH_TOKEN_FILE", "/run/token")
    settings = load_settings(tool, [])
    assert settings.target == "engine.internal:9100"
    assert settings.tls_ca_file == Path("/etc/ca.pem")
    assert settings.auth_token_file == Path("/run/token")


@pytest.mark.parametrize("tool", TOOLS)
def test_bare_flag_names_in_the_environment_are_ignored(tool, monkeypatch):
    # Another program's TLS_CA_FILE or AUTH_TOKEN_FILE must not switch the client to TLS or
    # send a token: only the PRODUCER_ names are documented.
    for name in ("TLS", "TLS_CA_FILE", "TLS_CERT_FILE", "TLS_KEY_FILE", "AUTH_TOKEN_FILE"):
        monkeypatch.setenv(name, "1" if name == "TLS" else "/elsewhere")
    monkeypatch.setenv("TLS_SERVER_NAME", "other")
    settings = load_settings(tool, [])
    assert not settings.tls
    assert settings.tls_ca_file is None and settings.tls_cert_file is None
    assert settings.tls_key_file is None and settings.auth_token_file is None
    assert settings.tls_server_name is None


@pytest.mark.parametrize("tool", TOOLS)
def test_flags_override_variables_and_empty_target_means_host_and_port(tool, monkeypatch):
    monkeypatch.setenv("ENGINE_TARGET", "")
    monkeypatch.setenv("PRODUCER_TLS_SERVER_NAME", "from-env")
    settings = load_settings(tool, ["--engine-host", "::1", "--tls-server-name", "from-flag"])
    assert settings.engine_target is None
    assert settings.target == "[::1]:9000"
    assert settings.tls_server_name == "from-flag"


def test_both_tools_define_the_connection_alike():
    producer, bridge = (tool.model_fields for tool in TOOLS)
    for name in CONNECTION:
        assert repr(producer[name]) == repr(bridge[name]), name
