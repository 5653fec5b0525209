"""The server certificate's dates: out of them it stops the start and is refused on rotation;
close to its end it is warned about; its days left are what the metrics collector reports."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import grpc
import pytest

from datasentinel.engine.metrics.tls_expiry import NAME, CertificateExpiryCollector
from datasentinel.engine.security import check_security
from datasentinel.engine.security.certificates import CertificateDatesError, CertificateError
from datasentinel.engine.security.tls import CertificateFiles
from datasentinel.engine.settings import EngineSettings
from tests.pki import PKI, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def live(pki, tmp_path) -> Path:
    """A copy of the 2-day server certificate and key, to rotate in place."""
    for name in ("server.pem", "server.key"):
        (tmp_path / name).write_bytes((pki.dir / name).read_bytes())
    return tmp_path


def rotate(live: Path, pki: PKI, name: str) -> None:
    for suffix in ("key", "pem"):
        aside = live / f"new.{suffix}"
        aside.write_bytes((pki.dir / f"{name}.{suffix}").read_bytes())
        os.replace(aside, live / f"server.{suffix}")


def test_an_expired_certificate_stops_the_start_saying_when_and_what_to_do(pki):
    with pytest.raises(CertificateDatesError, match="expired on 2020-01-01 00:00 UTC.*renew it"):
        CertificateFiles(pki.pem("expired-server"), pki.key("expired-server"), None)
    settings = EngineSettings(
        _cli_parse_args=False,
        tls_cert_file=pki.pem("expired-server"),
        tls_key_file=pki.key("expired-server"),
    )
    with pytest.raises(CertificateDatesError, match="CN=expired-server"):
        check_security(settings)  # the one start-up check, before any worker


def test_a_certificate_not_valid_yet_stops_the_start(pki):
    with pytest.raises(CertificateDatesError, match="not valid until 2100-01-01.*clock"):
        CertificateFiles(pki.pem("future-server"), pki.key("future-server"), None)


def test_a_file_without_a_certificate_is_an_error_naming_the_setting(pki, tmp_path):
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(CertificateError, match="ENGINE_TLS_CERT_FILE .*no readable PEM"):
        CertificateFiles(garbage, pki.key("server"), None)


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_a_certificate_near_its_end_is_warned_about_once(pki, caplog):
    files = CertificateFiles(pki.pem("server"), pki.key("server"), None, warning_days=14)
    files.fetch()
    assert len(warnings(caplog)) == 1
    assert "CN=server" in warnings(caplog)[0] and "expires in 2.0 days" in warnings(caplog)[0]
    caplog.clear()
    CertificateFiles(pki.pem("server"), pki.key("server"), None, warning_days=1)
    CertificateFiles(pki.pem("long-server"), pki.key("long-server"), None, warning_days=14)
    CertificateFiles(pki.pem("server"), pki.key("server"), None)  # a check: never warns
    assert warnings(caplog) == []


def test_a_rotated_in_expired_certificate_is_refused_once_and_the_old_one_kept(pki, live, caplog):
    files = CertificateFiles(live / "server.pem", live / "server.key", None)
    rotate(live, pki, "expired-server")
    assert files.fetch() is None and files.fetch() is None  # logged once, not per handshake
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "refusing the new TLS certificate" in errors[0] and "CN=server," in errors[0]
    assert "expired on 2020-01-01" in errors[0]
    assert files.validity.subject == "CN=server"
    rotate(live, pki, "long-server")
    assert isinstance(files.fetch(), grpc.ServerCertificateConfiguration)
    assert files.validity.subject == "CN=long-server"


def days(collector: CertificateExpiryCollector) -> float:
    [family] = collector.collect()
    assert family.name == NAME
    return family.samples[0].value


def test_the_collector_reports_the_days_left_of_the_certificate_the_engine_serves(pki, live):
    collector = CertificateExpiryCollector(live / "server.pem")  # at start, before any scrape
    rotate(live, pki, "expired-server")  # refused by the engine: still the old one's days
    assert 1.9 < days(collector) <= 2.0
    rotate(live, pki, "long-server")
    assert 364.9 < days(collector) <= 365.0
