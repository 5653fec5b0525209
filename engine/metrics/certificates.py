"""When the serving certificate expires, as a metric: a rotation that never happened (a stuck
cert-manager, a cron job that failed) must page someone days before clients fail their
handshakes. Read from ENGINE_TLS_CERT_FILE at each scrape (the file is reread for serving when it
changes, so the metric follows a rotation too); the first certificate of the chain is the
server's.

Python's ssl module decodes a certificate file only through ``ssl._ssl._test_decode_cert`` (the
call CPython's own tests make; no third-party parser needed for one date). A file that cannot be
read or decoded leaves the metric out and counts nothing: serving reports its own errors.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)


def not_after(path: Path) -> float | None:
    """The certificate's expiry, seconds since the epoch; None when it cannot be read."""
    try:
        decoded = ssl._ssl._test_decode_cert(str(path))  # noqa: SLF001 - see the module docstring
        return float(ssl.cert_time_to_seconds(decoded["notAfter"]))
    except (OSError, ssl.SSLError, KeyError, ValueError, AttributeError) as exc:
        log.debug("cannot read the expiry of %s: %s", path, exc)
        return None


class CertificateExpiry(Collector):
    def __init__(self, path: Path) -> None:
        self._path = path

    def collect(self) -> Iterator[Metric]:
        expiry = not_after(self._path)
        if expiry is None:
            return
        yield GaugeMetricFamily(
            "datasentinel_tls_certificate_expiry_timestamp_seconds",
            "When the serving certificate (ENGINE_TLS_CERT_FILE) expires, seconds since the epoch; "
            "days left: (this - time()) / 86400.",
            value=expiry,
        )


def register_certificate_expiry(settings, registry) -> None:
    """Adds the collector to ``registry`` when the engine serves TLS."""
    if settings.tls_cert_file is not None:
        registry.register(CertificateExpiry(settings.tls_cert_file))
