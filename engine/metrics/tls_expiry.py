"""``datasentinel_tls_certificate_expiry_days``: the days left of the certificate the engine serves
to new connections, computed at each scrape (a value set once would be days stale by the time an
alert needs it).

It is read by the process that serves /metrics, which with several workers is the supervisor,
not a process that serves TLS; so it follows the certificate file with the engine's own rule: a
changed file is taken when it is readable and within its dates, else the previous certificate
stays the served one (engine/security/tls.py), and it reports that one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from datasentinel.engine.file_identity import file_identity
from datasentinel.engine.security.certificates import (
    CertificateDatesError,
    CertificateError,
    Validity,
    check_dates,
    read_validity,
)
from datasentinel.secret_files import SecretFileError, read_secret_file

NAME = "datasentinel_tls_certificate_expiry_days"
HELP = (
    "Days until the TLS certificate served to new connections expires (ENGINE_TLS_CERT_FILE); "
    "alert well before 0."
)


class CertificateExpiryCollector(Collector):
    def __init__(self, cert_file: Path) -> None:
        self._path = cert_file
        self._lock = threading.Lock()
        self._seen: tuple | None = None
        self._served: Validity | None = None
        self._follow()  # the one the engine starts with (checked then), whatever comes later

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(NAME, HELP)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        served = self._follow()
        if served is not None:
            yield GaugeMetricFamily(NAME, HELP, value=served.days_left())

    def _follow(self) -> Validity | None:
        with self._lock:
            identity = file_identity(self._path)
            if identity == self._seen:
                return self._served
            try:
                validity = read_validity(
                    read_secret_file(self._path, "ENGINE_TLS_CERT_FILE"), self._path
                )
            except (SecretFileError, CertificateError):
                return self._served  # half-written or gone: looked at again next scrape
            self._seen = identity
            try:
                check_dates(validity)
            except CertificateDatesError:
                return self._served  # refused by the engine too
            self._served = validity
            return validity
