"""Certificate dates against a real engine: an expired (or not yet valid) certificate stops the
start, one close to its end is warned about and its days left are on /metrics, and one rotated
in expired is refused while the engine keeps serving the old one."""

from __future__ import annotations

import os
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from datasentinel.engine.healthcheck import main as healthcheck
from tests.conftest import build_tiny_model
from tests.pki import PKI, make_pki

GAUGE = "datasentinel_tls_certificate_expiry_days"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models")).dir


def tls_args(cert: Path, key: Path) -> list[str]:
    return ["--tls-cert-file", str(cert), "--tls-key-file", str(key)]


def days_left(engine) -> float | None:
    url = f"http://127.0.0.1:{engine.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == GAUGE:
            return family.samples[0].value
    return None


OUT_OF_DATES = [
    ("expired-server", "expired on 2020-01-01"),
    ("future-server", "not valid until 2100-01-01"),
]


@pytest.mark.parametrize("name, says", OUT_OF_DATES)
def test_a_certificate_out_of_its_dates_stops_the_start(pki, model_dir, start_engine, name, says):
    engine = start_engine(model_dir, *tls_args(pki.pem(name), pki.key(name)), wait=False)
    assert engine.process.wait(60) == 2
    errors = [line for line in engine.lines if " ERROR " in line]
    assert len(errors) == 1 and says in errors[0] and "ENGINE_TLS_CERT_FILE" in errors[0]
    assert not engine.port  # never listened


@pytest.mark.parametrize("workers", [1, 2])
def test_a_certificate_near_its_end_is_warned_about_and_its_days_exported(
    pki, model_dir, start_engine, workers
):
    engine = start_engine(
        model_dir,
        *tls_args(pki.pem("server"), pki.key("server")),
        "--workers", str(workers),
        credentials=grpc.ssl_channel_credentials(pki.read("ca")),
    )  # fmt: skip
    engine.wait_log("SERVING model", count=workers)
    assert "expires in 2.0 days" in engine.log() and " WARNING " in engine.log()
    assert 1.9 < days_left(engine) <= 2.0


def test_no_warning_outside_the_warning_days(pki, model_dir, start_engine):
    engine = start_engine(
        model_dir,
        *tls_args(pki.pem("server"), pki.key("server")),
        "--tls-expiry-warning-days", "1",
        credentials=grpc.ssl_channel_credentials(pki.read("ca")),
    )  # fmt: skip
    assert "expires in" not in engine.log()


def _replace(path: Path, data: bytes) -> None:
    aside = path.with_suffix(".new")
    aside.write_bytes(data)
    os.replace(aside, path)


def test_a_rotated_in_expired_certificate_is_refused_and_the_old_one_served(
    pki, model_dir, start_engine, tmp_path, monkeypatch
):
    live = tmp_path / "live"
    live.mkdir()
    for name in ("server.pem", "server.key"):
        (live / name).write_bytes((pki.dir / name).read_bytes())
    engine = start_engine(
        model_dir,
        *tls_args(live / "server.pem", live / "server.key"),
        credentials=grpc.ssl_channel_credentials(pki.read("ca")),
    )  # fmt: skip
    _replace(live / "server.key", pki.read_key("expired-server"))
    _replace(live / "server.pem", pki.read("expired-server"))
    # A new connection (the handshake is when the files are looked at) still gets the old one:
    # the health check verifies the certificate, dates included, against the CA.
    monkeypatch.setenv("ENGINE_PORT", str(engine.port))
    monkeypatch.setenv("ENGINE_TLS_CERT_FILE", str(live / "server.pem"))
    monkeypatch.setenv("ENGINE_HEALTHCHECK_CA_FILE", str(pki.pem("ca")))
    assert healthcheck([]) == 0
    deadline = time.monotonic() + 15
    while "refusing the new TLS certificate" not in engine.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    refusal = [line for line in engine.lines if "refusing the new TLS certificate" in line]
    assert len(refusal) == 1 and " ERROR " in refusal[0], engine.log()
    assert "expired on 2020-01-01" in refusal[0]
    assert healthcheck([]) == 0 and engine.process.poll() is None
    assert 1.9 < days_left(engine) <= 2.0  # the served certificate's, not the refused one's
