"""The start-up security check, decision by decision (the engine refusing to start is in
tests/e2e/test_security.py; loopback detection and the warn-or-refuse walk in test_auth.py)."""

from __future__ import annotations

import logging

import pytest

from datasentinel.engine.security.auth import TokenFileError
from datasentinel.engine.security.policy import (
    SecurityConfigError,
    check_security,
    exposure_problems,
)
from datasentinel.engine.security.tls import TLSConfigError
from datasentinel.engine.settings import EngineSettings
from tests.pki import PKI, make_pki


def settings(**values) -> EngineSettings:
    return EngineSettings(_cli_parse_args=False, **values)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tokens(tmp_path):
    path = tmp_path / "tokens"
    path.write_text("a-token\n")
    return path


def network(**values) -> EngineSettings:
    """gRPC on every interface, metrics off: only the gRPC port's exposure counts."""
    return settings(bind_host="0.0.0.0", metrics_port=-1, **values)


def test_tokens_without_tls_on_the_network_are_plain_text(tokens):
    problems = exposure_problems(network(auth_token_file=tokens))
    assert len(problems) == 1
    assert "gRPC on 0.0.0.0:" in problems[0] and "is plain text" in problems[0]


def test_tls_without_client_authentication_serves_anyone(pki):
    exposed = network(tls_cert_file=pki.pem("server"), tls_key_file=pki.key("server"))
    problems = exposure_problems(exposed)
    assert len(problems) == 1 and "serves anyone who can reach it" in problems[0]


def test_tls_with_tokens_or_a_client_ca_is_not_exposed(pki, tokens):
    tls = dict(tls_cert_file=pki.pem("server"), tls_key_file=pki.key("server"))
    assert exposure_problems(network(**tls, auth_token_file=tokens)) == []
    assert exposure_problems(network(**tls, tls_client_ca_file=pki.pem("ca"))) == []


def test_neither_tls_nor_tokens_on_the_network_is_both_problems():
    problems = exposure_problems(network())
    assert len(problems) == 2
    assert "plain text" in problems[0] and "serves anyone" in problems[1]


def test_metrics_on_the_network_need_a_token_unless_turned_off():
    open_metrics = settings(metrics_bind_host="0.0.0.0", metrics_port=9464)
    [problem] = exposure_problems(open_metrics)
    assert problem.startswith("metrics on 0.0.0.0:9464 need no token")
    assert exposure_problems(open_metrics.model_copy(update={"metrics_port": -1})) == []
    guarded = open_metrics.model_copy(update={"metrics_require_token": True})
    assert exposure_problems(guarded) == []


def test_require_auth_on_loopback_starts():
    check_security(settings(require_auth=True))


def test_require_auth_refuses_with_every_problem_named(tokens):
    with pytest.raises(SecurityConfigError, match="refusing to start") as refused:
        check_security(network(auth_token_file=tokens, require_auth=True))
    assert "is plain text" in str(refused.value) and "serves anyone" not in str(refused.value)


def test_an_unreadable_token_file_stops_the_start(tmp_path):
    with pytest.raises(TokenFileError, match="cannot read"):
        check_security(settings(auth_token_file=tmp_path / "missing"))


def test_an_unreadable_client_ca_stops_the_start(pki, tmp_path):
    values = dict(tls_cert_file=pki.pem("server"), tls_key_file=pki.key("server"))
    with pytest.raises(TLSConfigError, match="ENGINE_TLS_CLIENT_CA_FILE"):
        check_security(settings(**values, tls_client_ca_file=tmp_path / "no-ca.pem"))


def test_contradicting_settings_are_refused_before_any_file_is_read(tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(SecurityConfigError, match="ENGINE_TLS_KEY_FILE"):
        check_security(settings(tls_cert_file=missing, auth_token_file=missing))


@pytest.mark.parametrize(
    "values, words",
    [
        ({}, "security: plain text, no tokens, reflection on, metrics without token"),
        ({"reflection": False}, "reflection off"),
        ({"tls": True}, "security: TLS, bearer tokens"),
        ({"tls": True, "mutual": True}, "security: mutual TLS"),
        ({"metrics_require_token": True}, "metrics with token"),
    ],
)
def test_the_start_up_log_says_how_the_engine_is_protected(caplog, pki, tokens, values, words):
    values = dict(values)
    if values.pop("tls", False):
        values.update(tls_cert_file=pki.pem("server"), tls_key_file=pki.key("server"))
    if values.pop("mutual", False):
        values.update(tls_client_ca_file=pki.pem("ca"))
    if values.get("metrics_require_token") or "tls_cert_file" in values:
        values.update(auth_token_file=tokens)
    with caplog.at_level(logging.INFO, logger="datasentinel.engine.security.policy"):
        check_security(settings(**values))
    assert any(words in record.getMessage() for record in caplog.records), caplog.text
